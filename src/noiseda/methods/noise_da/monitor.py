"""The shortcut monitor of noise-da training (the paper's Fig. 2, made visible while it trains).

On a probe batch drawn once (crops at sample numbers the training stream never reaches: new
crops and flips of the training images; noise levels and noise from their own generator:
probing never changes the training stream), every validation step
measures the diffusion loss with the conditions as trained, with the real slot holding the raw
real input, and with the synthetic slot holding the raw synthetic input; logs their ratios;
saves a grid of the real probe images, raw and restored, so the progression can be seen; and
warns once when the real slot has stopped mattering after lambda reached its ceiling.

When the run has validation pairs (data.val_pairs: real-domain images with ground truth), it
also logs where the noise loss pushes the restored real images (``align/*``, see
noiseda.methods.noise_da.alignment): the cosine of its gradient with the truth, smoothing and the input, over
a few draws, on crops of those pairs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import torch

from noiseda.data.samples import derive_seed
from noiseda.methods.base import Batch, MonitorContext

PROBE_BASE = 2**40  # sample numbers this far out are never drawn by a training run
PROBE_IMAGES = 4
# |loss(raw real) / loss(restored real) - 1| under this, twice in a row: the real slot is ignored.
IGNORED_BELOW = 0.002
ALIGN_DRAWS = 8  # draws of the noise loss per alignment reading (probe-gradient takes more)


def fixed_batch(samples, seed: int, degrade_batch, device, to_model, images: int = PROBE_IMAGES,
                first: int = PROBE_BASE) -> Batch:
    """The batch every reading uses: samples far beyond the training stream, degraded (on the
    device if training does that) by their own seeded generator."""
    items = [samples[first + k] for k in range(images)]
    batch = {key: torch.stack([it[key] for it in items]).to(device) for key in items[0]}
    if "synthetic" not in batch and degrade_batch is not None:  # data.degrade_on=device
        g = torch.Generator(device).manual_seed(derive_seed(seed, "probe-degrade"))
        batch["synthetic"] = degrade_batch(batch["clean"], g)
    return Batch(**{k: to_model(v) for k, v in batch.items()})


class ShortcutMonitor:
    def __init__(self, core, context: MonitorContext, t_range, images: int = PROBE_IMAGES, first: int = PROBE_BASE):
        c = context
        self.core, self.to_image, self.seed = core, c.to_image, c.seed
        self.folder = None if c.folder is None else Path(c.folder)  # None: no sample grids
        self.batch = fixed_batch(c.samples, c.seed, c.degrade_batch, c.device, c.to_model, images, first)
        g = torch.Generator().manual_seed(derive_seed(c.seed, "probe-noise"))
        n = self.batch.clean.shape[0]
        self.gamma = core.schedule.sample(n, tuple(t_range), c.device, generator=g)
        self.eps = torch.randn(self.batch.clean.shape, generator=g).to(c.device)
        self.ignored_in_a_row = 0
        self.warned = False
        self.align = self._alignment_batch(c.real_pairs or [], images, c.to_model)

    def _alignment_batch(self, pairs: list, images: int, to_model) -> Optional[tuple[Batch, torch.Tensor]]:
        """The probe batch with its real images replaced by crops of real pairs large enough
        for the training crop size; None where there are none (or no noise loss)."""
        from noiseda.methods.noise_da.alignment import crops

        size = self.batch.clean.shape[-1]
        usable = [p for p in pairs if p[1].shape == p[2].shape and min(p[1].shape[1:]) >= size]
        if not usable:
            return None
        x, y = crops(usable, size, images, self.seed, "data.val_pairs")
        device = self.batch.clean.device
        return dataclasses.replace(self.batch, real=to_model(x.to(device))), to_model(y.to(device))

    def __call__(self, step: int, lam_at_ceiling: bool) -> tuple[dict[str, float], Optional[str]]:
        core = self.core
        was_training = core.training
        core.eval()
        try:
            probe = core.condition_losses(self.batch, self.gamma, self.eps)
        finally:
            core.train(was_training)
        values = {"probe/mse": probe["mse"], "probe/mse_real_raw": probe["mse_real_raw"],
                  "probe/mse_syn_raw": probe["mse_syn_raw"],
                  "probe/real_slot_ratio": probe["mse_real_raw"] / max(probe["mse"], 1e-12),
                  "probe/syn_slot_ratio": probe["mse_syn_raw"] / max(probe["mse"], 1e-12)}
        if self.align is not None:
            from noiseda.methods.noise_da.alignment import log_values, measure

            values.update(log_values(measure(core, *self.align, draws=ALIGN_DRAWS, seed=self.seed)))
        self._save_grid(step, probe["restored_real"])
        return values, self._warning(step, values["probe/real_slot_ratio"], lam_at_ceiling)

    def _warning(self, step: int, ratio: float, lam_at_ceiling: bool) -> Optional[str]:
        ignored = lam_at_ceiling and abs(ratio - 1.0) < IGNORED_BELOW
        self.ignored_in_a_row = self.ignored_in_a_row + 1 if ignored else 0
        if self.ignored_in_a_row < 2 or self.warned:
            return None
        self.warned = True
        return (f"shortcut warning at step {step}: the diffusion net no longer reads the real condition "
                f"(its loss with the raw real input is {ratio:.4f}x the loss with the restored one), so the "
                "real images get no adaptation signal; try channel shuffling and residual swapping on, a larger "
                "method.lambda_weight, or the checkpoint from before this point (see docs/methods.md)")

    def _save_grid(self, step: int, restored: torch.Tensor) -> None:
        from noiseda.evaluation.sheet import contact_sheet

        if self.folder is None:
            return
        raw = self.batch.real
        rows = [[self.to_image(raw[i]), self.to_image(restored[i])] for i in range(raw.shape[0])]
        self.folder.mkdir(parents=True, exist_ok=True)
        contact_sheet(rows, ["real input", f"restored, step {step}"], self.folder / f"step-{step:08d}.png")
