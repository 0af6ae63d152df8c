"""DANN (Ganin & Lempitsky 2015): feature-space adaptation, the paper's first comparison.

A domain classifier reads the restorer's features of synthetic and real inputs and learns to
tell them apart; a gradient-reversal layer between them, of strength lambda, makes the
restorer learn features the classifier cannot separate. Total loss: L_sup + L_domain, the
classifier at full weight from step 1, lambda on the config's ramp (DANN's own schedule is
method.lambda_weight=1, method.lambda_slope=10, method.lambda_ramp_steps=train.steps, which
compare-methods sets, with --adversarial-weight for the ceiling). The features are the
restorer's bottleneck by default (found by one forward of a blank image, see ``bottleneck_name``), or
the modules named in ``method.options.dann.features``. The classifier is a
training-only module: only the restorer is exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.methods.base import Method, TableRow, register_method, scale_grad
from noiseda.errors import NoisedaError


def blank_forward(net: nn.Module, size: int) -> None:
    """One forward of a blank image in eval mode: no running statistics (BatchNorm) change, so a
    method that probes its restorer starts from the same weights as one that does not."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size, device=next(net.parameters()).device))
    finally:
        net.train(was_training)


def bottleneck_name(net: nn.Module, size: int = 64) -> str:
    """The module whose output is the net's deepest feature map, from one forward of a blank image: the
    first run of module outputs at the smallest resolution (pooled vectors and the output conv
    ``last`` aside), and in it the outermost module, the last if several (a whole block such as
    a U-Net's bottleneck, not its first conv; for nets that never downsample, the body's end)."""
    seen: list[tuple[str, int]] = []

    def record(name):
        def hook(mod, inp, out):
            # Feature maps only: the square probe gives square N x C x H x W maps at size / 2^k;
            # token windows, pooled vectors and sequences are skipped.
            h, w = (out.shape[-2], out.shape[-1]) if torch.is_tensor(out) and out.dim() == 4 else (0, 1)
            if h == w >= 2 and size % h == 0:
                seen.append((name, out.shape[-2] * out.shape[-1]))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in net.named_modules() if name and name != "last"]
    try:
        blank_forward(net, size)
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        raise NoisedaError(f"{type(net).__name__} shows no feature maps to align: name them in method.options.dann.features")
    smallest = min(a for _, a in seen)
    start = next(i for i, (_, a) in enumerate(seen) if a == smallest)
    run = []
    for name, area in seen[start:]:
        if area != smallest:
            break
        run.append(name)
    depth = min(n.count(".") for n in run)
    return [n for n in run if n.count(".") == depth][-1]


class DomainClassifier(nn.Module):
    """Conv, LeakyReLU, conv, global average pool, linear: one logit (real = 1) per image."""

    def __init__(self, channels: int, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, hidden, 3, padding=1, stride=2), nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(features).mean(dim=(2, 3))).squeeze(1)


class FeatureTap:
    """Keeps the outputs of some of the restorer's modules from its last forward (hooks), and
    their shapes for a 64 x 64 input. Not a module: it owns no parameters. Copies of the
    restorer (the EMA) carry the hooks along, but only the original's forward is recorded."""

    def __init__(self, restorer: nn.Module, names: list[str], net_name: str):
        modules = dict(restorer.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise NoisedaError(f"config method.options.dann.features: {net_name} has no module {missing[0]!r}")
        self.names = names
        self.outputs: dict[str, torch.Tensor] = {}
        for name in names:
            target = modules[name]

            def hook(mod, inp, out, name=name, target=target):
                if mod is target:
                    self.outputs[name] = out

            target.register_forward_hook(hook)
        blank_forward(restorer, 64)
        self.shapes = {n: tuple(self.outputs[n].shape[1:]) for n in names}  # (C, H, W) at 64 x 64
        self.outputs.clear()

    def take(self) -> dict[str, torch.Tensor]:
        out, self.outputs = self.outputs, {}
        return out


def domain_loss(classifiers: nn.ModuleDict, features: dict[str, torch.Tensor], n: int, lam: float) -> torch.Tensor:
    """Mean over the tapped features of the classifiers' loss (synthetic 0, real 1), each read
    through a gradient reversal of strength ``lam``: the classifiers descend it at full weight,
    the restorer ascends it at lam (DANN's schedule sits on the reversal, not on the loss)."""
    labels = torch.cat([torch.zeros(n), torch.ones(n)]).to(next(iter(features.values())).device)
    losses = [F.binary_cross_entropy_with_logits(classifiers[k.replace(".", "_")](scale_grad(f, -lam)).float(), labels)
              for k, f in features.items()]
    return sum(losses) / len(losses)


@register_method("dann")
class DANN(Method):
    streams = ("synthetic", "real")
    lambda_role = "strength of the gradient reversal between the restorer and the domain classifier"
    table = TableRow(space="feature", trained_on="both", paper="30.09 / 0.7832 / 0.1348", adversarial=True, order=10)

    @dataclass
    class Options:
        features: list[str] = field(default_factory=list)  # restorer modules to align; []: its bottleneck

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        self.tap = FeatureTap(restorer, list(self.options.features) or [bottleneck_name(restorer)], cfg.net.name)
        self.classifiers = nn.ModuleDict({n.replace(".", "_"): DomainClassifier(shape[0])
                                          for n, shape in self.tap.shapes.items()})

    def forward(self, batch, lam):
        x_s, x_r = batch.synthetic, batch.real
        n = x_s.shape[0]
        restored = self.restorer(torch.cat([x_s, x_r]))  # one pass: features of both domains
        sup = self.supervised(restored[:n], batch.clean)
        domain = domain_loss(self.classifiers, self.tap.take(), n, lam)
        return {"total": sup + domain, "sup": sup, "domain": domain.detach()}

