"""noiseda: noise-space domain adaptation for image restoration.

Train a restoration network on synthetic pairs while a diffusion model,
conditioned on its outputs for synthetic and real degraded images, pulls
both towards the clean-image distribution. Only the restorer is kept.
"""

__version__ = "0.1.0"
