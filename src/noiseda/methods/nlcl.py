"""NLCL (Ye et al., CVPR 2022): unsupervised deraining, the paper's deraining comparison (Table 2).

From real rainy images O and unpaired clean images (``data.reference``; no synthetic pairs), two
generators split O into a background B = restorer(O) and a rain layer R = rain_net(O):
- an LSGAN with a PatchGAN (3 layers) makes B look like the clean images (weight 1);
- MSE(B + R, O) makes the layers add up to the input (weight 1), L1(B, O) keeps B near O (0.1);
- location contrast (CUT's PatchNCE, weight 1): the restorer's features of B at a location
  match its features of O at the same location against other locations; the same for a clean
  image and its restoration (CUT's identity term), the two averaged;
- layer contrast (weight 1): in the discriminator's features, a background location is pulled
  towards the ``positives`` most similar background locations (non-local self-similarity) and
  pushed from ``negatives`` rain-layer locations.
Both contrasts read features through small MLPs (2 layers, 256), normalised, temperature 0.07.
The weights, sizes and temperature are the authors' release's. Differences: the restorer is this
framework's net (theirs: a 16-block residual net, as is our rain net ``rain_blocks``); the
discriminator is pix2pix's PatchGAN without anti-aliasing; the layer contrast reaches the
generators through the discriminator's frozen weights, and its similarity search spans the
whole (small) feature map instead of a 40 px window; Adam at ``train.lr`` (theirs 2e-4, betas
0.5 / 0.999). Only the restorer (the background generator) is exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.methods.base import Method, TableRow, register_method
from noiseda.methods.parts.features import FeatureTap, bottleneck_name
from noiseda.methods.parts.gan import PatchGAN


class RainNet(nn.Module):
    """The rain-layer generator (the authors' shape): a conv, residual blocks (conv, instance
    norm, ReLU, conv, instance norm), conv, instance norm, ReLU, conv, and a conv to three
    channels, no output activation."""

    def __init__(self, width: int = 32, blocks: int = 16):
        super().__init__()

        def block():
            return nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.InstanceNorm2d(width), nn.ReLU(),
                                 nn.Conv2d(width, width, 3, padding=1), nn.InstanceNorm2d(width))

        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.blocks = nn.ModuleList(block() for _ in range(blocks))
        self.tail = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.InstanceNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        for b in self.blocks:
            h = h + b(h)
        return self.tail(h)


def projector(channels: int, dim: int = 256) -> nn.Module:
    return nn.Sequential(nn.Linear(channels, dim), nn.ReLU(), nn.Linear(dim, dim))


def _locations(feature: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x HW x C."""
    return feature.flatten(2).transpose(1, 2)


def patch_nce(query: torch.Tensor, key: torch.Tensor, mlp: nn.Module, patches: int, tau: float) -> torch.Tensor:
    """CUT's PatchNCE: at ``patches`` shared random locations, each query location's positive is
    the key at the same location, its negatives the keys at the others (keys detached)."""
    q, k = _locations(query), _locations(key).detach()
    idx = torch.randperm(q.shape[1], device=q.device)[:patches]
    q = F.normalize(mlp(q[:, idx].float()), dim=-1)
    k = F.normalize(mlp(k[:, idx].float()), dim=-1)
    logits = q @ k.transpose(1, 2) / tau  # N x P x P: the diagonal holds the positives
    labels = torch.arange(logits.shape[1], device=q.device).expand(logits.shape[0], -1)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten())


def layer_contrast(background: torch.Tensor, rain: torch.Tensor, mlp: nn.Module, positives: int, negatives: int,
                   tau: float) -> torch.Tensor:
    """Supervised contrast at one random anchor location per image: its positives are the
    ``positives`` background locations most similar to it (L2 in these features), its negatives
    ``negatives`` random rain-layer locations."""
    b, r = _locations(background), _locations(rain)
    n, hw, _ = b.shape
    rows = torch.arange(n, device=b.device)
    anchor = torch.randint(hw, (n,), device=b.device)
    distance = (b - b[rows, anchor][:, None]).pow(2).sum(-1).detach()
    distance[rows, anchor] = float("inf")  # not its own positive
    pos_idx = distance.topk(min(positives, hw - 1), largest=False).indices  # N x K
    neg_idx = torch.randperm(r.shape[1], device=b.device)[:negatives]
    a = F.normalize(mlp(b[rows, anchor].float()), dim=-1)[:, None]  # N x 1 x D
    pos = F.normalize(mlp(b[rows[:, None], pos_idx].float()), dim=-1)  # N x K x D
    neg = F.normalize(mlp(r[:, neg_idx].float()), dim=-1)  # N x M x D
    pos_logits = (a * pos).sum(-1) / tau  # N x K
    neg_logits = (a * neg).sum(-1) / tau  # N x M
    everything = torch.logsumexp(torch.cat([pos_logits, neg_logits], dim=1), dim=1, keepdim=True)
    return (everything - pos_logits).mean()  # -log(exp(pos) / sum(exp(all))), over positives and images


@register_method("nlcl")
class NLCL(Method):
    streams = ("real", "reference")
    table = TableRow(space="-", trained_on="real rainy + unpaired clean", paper="20.68 / 0.8412 / 0.0967 (deraining, Table 2)",
                     tasks=("derain",), order=55)

    @dataclass
    class Options:
        features: list[str] = field(default_factory=list)  # restorer modules for the location contrast; []: its bottleneck
        gan_weight: float = 1.0
        sum_weight: float = 1.0  # MSE(B + R, O)
        input_weight: float = 0.1  # L1(B, O)
        location_weight: float = 1.0
        layer_weight: float = 1.0
        patches: int = 256  # locations of the location contrast
        positives: int = 8  # of the layer contrast (non-local similar background locations)
        negatives: int = 128  # of the layer contrast (rain-layer locations)
        temperature: float = 0.07
        rain_width: int = 32
        rain_blocks: int = 16

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        o = self.options
        self.rain_net = RainNet(o.rain_width, o.rain_blocks)
        self.discriminator = PatchGAN()
        self.tap = FeatureTap(restorer, list(o.features) or [bottleneck_name(restorer)], cfg.net.name)
        self.location_mlps = nn.ModuleDict({n.replace(".", "_"): projector(shape[0]) for n, shape in self.tap.shapes.items()})
        # the discriminator's features: after each LeakyReLU (its last conv gives the logits)
        self.layer_taps = [i for i, m in enumerate(self.discriminator.body) if isinstance(m, nn.LeakyReLU)]
        widths = [m.out_channels for m in self.discriminator.body if isinstance(m, nn.Conv2d)]
        self.layer_mlps = nn.ModuleList(projector(c) for c in widths[: len(self.layer_taps)])

    def _judge(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The discriminator with frozen weights: its logits and its tapped features."""
        features, h = [], x
        for i, layer in enumerate(self.discriminator.body):
            h = torch.func.functional_call(layer, {k: v.detach() for k, v in layer.named_parameters()}, (h,))
            if i in self.layer_taps:
                features.append(h)
        return h, features

    def forward(self, batch, lam):
        o = self.options
        rainy, clean = batch.real, batch.reference
        n = rainy.shape[0]
        out = self.restorer(torch.cat([rainy, clean]))  # B and the clean images' restoration
        inputs = self.tap.take()
        background = out[:n]
        self.restorer(out)  # the outputs' features, for the location contrast
        outputs = self.tap.take()
        rain = self.rain_net(rainy)
        disc = self._disc_loss(clean, background)
        fake_logits, fake_features = self._judge(background)
        fool = (fake_logits - 1).pow(2).mean()
        _, rain_features = self._judge(rain)
        layer = sum(layer_contrast(b, r, mlp, o.positives, o.negatives, o.temperature)
                    for b, r, mlp in zip(fake_features, rain_features, self.layer_mlps)) / len(self.layer_mlps)
        location = sum(patch_nce(outputs[k], inputs[k], self.location_mlps[k.replace(".", "_")], o.patches, o.temperature)
                       for k in inputs) / len(inputs)  # the rainy half and the clean (identity) half together
        added = F.mse_loss(background + rain, rainy)
        near = F.l1_loss(background, rainy)
        total = (disc + o.gan_weight * fool + o.sum_weight * added + o.input_weight * near
                 + o.location_weight * location + o.layer_weight * layer)
        return {"total": total, "disc": disc.detach(), "fool": fool.detach(), "sum": added.detach(),
                "near": near.detach(), "location": location.detach(), "layer": layer.detach()}

    def _disc_loss(self, clean: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """LSGAN: clean images to 1, restored backgrounds (detached) to 0."""
        return ((self.discriminator(clean) - 1).pow(2).mean() + self.discriminator(background.detach()).pow(2).mean()) / 2
