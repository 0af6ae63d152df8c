"""AP-BSN (Lee et al., CVPR 2022): self-supervised denoising from real noisy images alone.

The restorer is AP-BSN's blind-spot net behind pixel-shuffle downsampling (``net.name=ap-bsn``,
or ``ap-bsn-s`` on a CPU; nets/bsn.py): in training it sees the noisy image through PD at stride
5 and learns to predict that same noisy image under an L1 loss; its blind spot makes the
identity impossible, so what it learns is the clean signal (for noise that PD makes independent
between pixels). No clean image is used, and the synthetic pairs are not read. Restoring uses PD
at stride 2 and random-replacing refinement, done by the net itself in eval mode, so the
exported model restores with the test-time procedure through `noiseda restore` and `evaluate`.

The authors' recipe: crops of 120 px, batch 8, Adam at 1e-4 (train.*); the paper's number is
for SIDD, 34.90 dB (the DA paper's Table 5).
"""

from __future__ import annotations

import torch.nn.functional as F

from noiseda.errors import NoisedaError
from noiseda.methods.base import Method, TableRow, register_method
from noiseda.nets.bsn import APBSN


@register_method("ap-bsn")
class APBSNTraining(Method):
    streams = ("real",)
    # compare-methods trains it with its own net, not the shared restorer
    table = TableRow(space="- (blind spot)", trained_on="real noisy only", paper="34.90 / 0.9000 / - (Table 5)",
                     tasks=("denoise",), order=65, setup=("net.name=ap-bsn", "net.width=0", "net.options={}"))

    @classmethod
    def check_config(cls, cfg, options) -> None:
        if cfg.net.name not in ("ap-bsn", "ap-bsn-s", "apbsn"):
            raise NoisedaError(f"config net.name: method ap-bsn trains AP-BSN's blind-spot net: set net.name=ap-bsn "
                               f"(ap-bsn-s on a CPU, apbsn for any size), not {cfg.net.name}")

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        if not isinstance(restorer, APBSN):
            raise NoisedaError(f"method ap-bsn needs a blind-spot restorer (net.name=ap-bsn), got {type(restorer).__name__}")

    def forward(self, batch, lam):
        noisy = batch.real
        loss = F.l1_loss(self.restorer(noisy), noisy)  # the restorer is in training mode: PD at the training stride
        return {"total": loss, "self": loss.detach()}
