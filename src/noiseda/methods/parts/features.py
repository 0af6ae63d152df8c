"""Reading the restorer's features (DANN, DSN, CyCADA): its bottleneck found by one forward of
a blank image, forward hooks that keep chosen modules' outputs, and a domain classifier behind
a gradient reversal."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.errors import NoisedaError
from noiseda.methods.base import scale_grad


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


def scale_free(features: torch.Tensor) -> torch.Tensor:
    """The features divided by their root mean square over the whole batch (both domains): what
    the classifier sees no longer grows with their scale, so the restorer cannot raise the
    classifier's loss by inflating its features (the DANN-family divergence, docs/results.md).
    Differences between samples and domains, in scale too, are kept."""
    return features / features.float().pow(2).mean().sqrt().clamp_min(1e-6).to(features.dtype)


def domain_loss(classifiers: nn.ModuleDict, features: dict[str, torch.Tensor], n: int, lam: float,
                normalize: bool = False) -> torch.Tensor:
    """Mean over the tapped features of the classifiers' loss (synthetic 0, real 1), each read
    through a gradient reversal of strength ``lam``: the classifiers descend it at full weight,
    the restorer ascends it at lam (DANN's schedule sits on the reversal, not on the loss)."""
    labels = torch.cat([torch.zeros(n), torch.ones(n)]).to(next(iter(features.values())).device)
    read = scale_free if normalize else (lambda f: f)
    losses = [F.binary_cross_entropy_with_logits(classifiers[k.replace(".", "_")](read(scale_grad(f, -lam))).float(), labels)
              for k, f in features.items()]
    return sum(losses) / len(losses)
