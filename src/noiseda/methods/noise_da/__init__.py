"""Noise-space domain adaptation (the paper): the method, its diffusion net, its shortcut
monitor and the gradient alignment that the monitor and `noiseda probe-gradient` read."""

from noiseda.methods.noise_da import method  # noqa: F401  (registers noise-da and noise-da-ex)
