"""The method contract: what every adaptation method declares and what the training loop asks.

A method is an ``nn.Module`` that owns the restorer (always ``.restorer``, the only net ever
exported) and whatever training-only nets it needs, and turns a training ``Batch`` into a dict
of losses with "total". It lives in one file of this package and registers itself:

    @register_method("my-method")
    class MyMethod(Method):
        streams = ("synthetic", "real")        # the batch entries it reads (see Batch)
        lambda_role = "weight of my loss"      # what lambda means for it; None: not used
        table = TableRow(space="pixel", trained_on="both")   # compare-methods' row; None: left out

        @dataclass
        class Options:                         # its own settings: method.options.my-method.weight
            weight: float = 1.0

        def forward(self, batch, lam):
            ...
            return {"total": ..., "sup": ...}

The training loop never tests for a method by name or attribute: it asks the hooks below
(parameter groups, which nets to compile, whether the restorer is frozen at a step, when
lambda's ramp starts, a monitor at validation steps).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import torch
from torch import nn

from noiseda.errors import NoisedaError
from noiseda.registry import Registry
from noiseda.typed import read_dataclass

METHODS: Registry = Registry("method")

STREAMS = ("synthetic", "real", "reference")  # the synthetic pair; unlabeled real; unpaired clean


@dataclass
class Batch:
    """One training batch, every tensor N x C x H x W in the model's value range.

    ``synthetic``: degraded synthetic inputs; ``clean``: their ground truth; ``real``: unlabeled
    real degraded images (methods with "real" in ``streams``); ``reference``: unpaired clean
    images (methods with "reference" in ``streams``)."""

    synthetic: torch.Tensor
    clean: torch.Tensor
    real: Optional[torch.Tensor] = None
    reference: Optional[torch.Tensor] = None

    def map(self, fn) -> "Batch":
        """A batch with ``fn`` applied to every tensor present."""
        return Batch(**{f.name: None if (v := getattr(self, f.name)) is None else fn(v) for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class TableRow:
    """How ``noiseda compare-methods`` presents a method (the columns of the paper's Table 1)."""

    space: str  # where it adapts: "noise", "feature", "pixel", "-" (not an adaptation method)
    trained_on: str  # the training data it uses, as the paper lists it
    paper: Optional[str] = None  # the paper's real SIDD numbers, "PSNR / SSIM / LPIPS"
    order: int = 50  # position in the table (the paper's row order), then by name
    default: bool = True  # in compare-methods' default list
    tasks: tuple[str, ...] = ("denoise", "derain", "deblur")  # compare-methods' default list includes it for these
    adversarial: bool = False  # compare-methods' --adversarial-weight sets its lambda ceiling (its own schedule otherwise)
    # config changes compare-methods makes for this method: its authors' own restorer or data
    # (AP-BSN's blind-spot net, masked training's SwinIR and noise level); () for most
    setup: tuple[str, ...] = ()


@dataclass
class MonitorContext:
    """What the training loop hands to a method's monitor (``Method.make_monitor``)."""

    samples: Any  # the training sample stream (data.samples.TrainSamples): sample i as a dict
    seed: int
    degrade_batch: Optional[Callable]  # data.degrade_on=device: degrades a batch of clean images; else None
    device: torch.device
    to_model: Callable[[torch.Tensor], torch.Tensor]  # images in [0, 1] -> the model's range and layout
    to_image: Callable[[torch.Tensor], torch.Tensor]  # the model's range -> a [0, 1] image on the CPU
    folder: Optional[Path]  # where it may save pictures; None: nowhere
    real_pairs: list = dataclasses.field(default_factory=list)  # validation pairs (name, input, target), [0, 1]


@dataclass(frozen=True)
class LambdaDefaults:
    """A method's lambda schedule where the config leaves it unset (its authors' own)."""

    weight: float = 0.2
    slope: float = 5.0
    ramp_steps: Optional[int] = 0  # 0: 300 passes over the synthetic set (the paper's); None: the whole run


@dataclass
class NoOptions:
    """A method without settings of its own."""


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def lambda_at(step: int, weight: float, slope: float, ramp_steps: int) -> float:
    """DANN-style ramp: weight * (2 / (1 + exp(-slope * p)) - 1), p = min(step / ramp, 1)."""
    p = min(step / max(ramp_steps, 1), 1.0)
    return weight * (2.0 / (1.0 + math.exp(-slope * p)) - 1.0)


def read_options(method_cls: type["Method"], options: dict) -> Any:
    """``method.options.<name>`` as the method's ``Options`` dataclass (types checked, unknown
    keys refused with a close-name suggestion)."""
    return read_dataclass(method_cls.Options, options, f"method.options.{method_cls.name}")


class Method(nn.Module):
    """Base: holds the restorer, its supervised loss and lambda's schedule; subclasses add
    training-only nets and losses."""

    name: ClassVar[str] = ""  # set by register_method
    streams: ClassVar[tuple[str, ...]] = ("synthetic",)
    #: what lambda weighs for this method (docs and `noiseda methods`); None: lambda is not used
    lambda_role: ClassVar[Optional[str]] = None
    table: ClassVar[Optional[TableRow]] = None
    Options: ClassVar[type] = NoOptions
    lambda_defaults: ClassVar[LambdaDefaults] = LambdaDefaults()
    #: some of its nets get no gradient at some steps (stages): multi-process training tells DDP
    idle_nets: ClassVar[bool] = False
    #: options that make a config written before per-method options (flat method keys) run as it did
    earlier_behaviour: ClassVar[dict] = {}

    def __init__(self, cfg, restorer: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.restorer = restorer
        self.options = read_options(type(self), cfg.method.options.get(self.name, {}))
        self.progress = 0.0  # the share of the run done (begin_step), for schedules over the run

    # -- the losses -------------------------------------------------------------------------
    def supervised(self, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return charbonnier(restored, target, self.cfg.method.charbonnier_eps)

    def forward(self, batch: Batch, lam: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- hooks the training loop asks (defaults: a plain supervised method) ------------------
    @classmethod
    def check_config(cls, cfg, options) -> None:
        """Cross-field checks of a config for this method (raise NoisedaError); ``options`` is
        the parsed ``Options``."""

    def parameter_groups(self, train_cfg) -> list[dict]:
        """Adam's parameter groups, each with its learning rate."""
        return [{"params": list(self.parameters()), "lr": train_cfg.lr}]

    def nets_to_compile(self) -> list[nn.Module]:
        """The nets ``train.compile`` compiles (the restorer and any heavy training-only net)."""
        return [self.restorer]

    def begin_step(self, step: int, total_steps: int) -> None:
        """Called before each training step (``step`` from 1): schedules over the run read
        ``self.progress``, which goes from 0 to 1."""
        self.progress = (step - 1) / max(total_steps, 1)

    def lr_scale(self) -> float:
        """The learning rates' factor at this step (1: the configured rates throughout)."""
        return 1.0

    def max_grad_norm(self) -> Optional[float]:
        """Clip the joint gradient norm of all trained nets to this (None: no clipping)."""
        return None

    @property
    def lambda_delay(self) -> int:
        """Steps before lambda's ramp starts (0: from step 1)."""
        return 0

    def lambda_at_step(self, step: int, ramp: int) -> float:
        """lambda at a step, 0 for methods that do not use it."""
        if self.lambda_role is None:
            return 0.0
        m = self.cfg.method
        return lambda_at(max(0, step - self.lambda_delay), m.lambda_weight, m.lambda_slope, ramp)

    def restorer_frozen(self, step: int) -> bool:
        """Whether only the method's other nets learn at this step."""
        return False

    def stage(self) -> str:
        """The name of the training stage at this step, for methods trained in stages ("" if not)."""
        return ""

    def make_monitor(self, context) -> Optional[Any]:
        """An object called at every validation step as ``monitor(step, ramped) -> (values,
        warning)``, given a ``MonitorContext``. None: no monitor."""
        return None


def register_method(name: str):
    """Class decorator: register a Method subclass under ``name``."""

    def add(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"register_method({name!r}) decorates a Method subclass")
        unknown = set(cls.streams) - set(STREAMS)
        if unknown or "synthetic" not in cls.streams and "real" not in cls.streams:
            raise TypeError(f"method {name!r}: streams must be among {STREAMS}, got {cls.streams}")
        cls.name = name
        if "table" not in vars(cls):  # a row describes one method: a subclass declares its own
            cls.table = None
        return METHODS.register(name)(cls)

    return add


def method_class(name: str) -> type[Method]:
    return METHODS.get(name)


def build_method(cfg, restorer: nn.Module) -> Method:
    return method_class(cfg.method.name)(cfg, restorer)


def _fill_lambda(cfg, defaults: LambdaDefaults) -> None:
    """Unset lambda settings take the method's defaults (recorded in config.yaml as numbers)."""
    m = cfg.method
    m.lambda_weight = defaults.weight if m.lambda_weight is None else m.lambda_weight
    m.lambda_slope = defaults.slope if m.lambda_slope is None else m.lambda_slope
    if m.lambda_ramp_steps is None:
        m.lambda_ramp_steps = cfg.train.steps if defaults.ramp_steps is None else defaults.ramp_steps
    for key in ("lambda_weight", "lambda_slope", "lambda_ramp_steps"):
        if getattr(m, key) < 0:
            raise NoisedaError(f"config method.{key}: expected >= 0, got {getattr(m, key)}")


def check_method_config(cfg) -> dict:
    """``method.options`` (method name -> its options) parsed, and the chosen method's checked
    against the rest of ``cfg``: a plain dict holding the chosen method's options in full (what
    config.yaml records), and those given for other methods (so that a config can switch
    method.name without losing them)."""
    given = cfg.method.options
    resolved = {}
    for name, options in given.items():
        try:
            other = method_class(name)
        except NoisedaError as exc:
            raise NoisedaError(f"config method.options.{name}: {exc}") from None
        if not isinstance(options, dict):
            raise NoisedaError(f"config method.options.{name}: expected {name}'s options as a mapping, got {options!r}")
        resolved[name] = dataclasses.asdict(read_options(other, options))
    cls = method_class(cfg.method.name)
    _fill_lambda(cfg, cls.lambda_defaults)
    chosen = read_options(cls, given.get(cls.name, {}))
    cls.check_config(cfg, chosen)
    resolved[cls.name] = dataclasses.asdict(chosen)
    return resolved


def describe(name: str) -> dict:
    """What a method declares, for `noiseda methods`: its first docstring line, the batch
    streams it reads, lambda's role, its options with their defaults, its table row."""
    cls = method_class(name)
    doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0]
    summary = re.split(r"(?<!\bal)\.\s", " ".join(doc.split()), maxsplit=1)[0].rstrip(".") + "."  # "et al." goes on
    return {"name": name, "summary": summary, "streams": list(cls.streams), "lambda": cls.lambda_role,
            "lambda_defaults": dataclasses.asdict(cls.lambda_defaults) if cls.lambda_role else None,
            "options": dataclasses.asdict(cls.Options()), "table": dataclasses.asdict(cls.table) if cls.table else None}


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by ``scale``."""
    return _ScaleGrad.apply(x, scale)


def pairwise_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PixelDA's content loss: mean squared difference minus the squared mean difference, per
    image (what stays if a constant shift is forgiven), averaged over the batch."""
    d = (a - b).flatten(1)
    return (d.pow(2).mean(1) - d.mean(1).pow(2)).mean()


# DANN's schedules (Ganin & Lempitsky 2015, Sec. 5.2.2): the reversal strength
# 2 / (1 + exp(-10 p)) - 1 and the learning rate lr0 / (1 + 10 p)^0.75 over the training progress p.
DANN_SCHEDULE = LambdaDefaults(weight=1.0, slope=10.0, ramp_steps=None)


def constant_weight(weight: float) -> LambdaDefaults:
    """No ramp: lambda = ``weight`` from step 1 (a one-step ramp this steep gives exactly 1.0 x
    weight in floating point), as PixelDA's and DSN's releases weight their adversarial terms."""
    return LambdaDefaults(weight=weight, slope=40.0, ramp_steps=1)


def annealed_lr_scale(progress: float) -> float:
    return 1.0 / (1.0 + 10.0 * progress) ** 0.75
