"""`noiseda compare-methods`: the paper's Table 1 as a sweep: every method trains the same
restorer on the same data for the same steps and seeds; vanilla is the reference of the paired
intervals; the paper's numbers (real SIDD validation) stand beside ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from noiseda.experiments.ablate import run_with_table, variant_table
from noiseda.errors import NoisedaError
from noiseda.experiments.sweep import Sweep, check_seeds_and_tests

# method -> (adaptation space, training data the paper lists, the paper's Table 1 PSNR / SSIM / LPIPS)
PAPER_TABLE1: dict[str, tuple[str, str, Optional[str]]] = {
    "vanilla": ("-", "synthetic pairs", "26.58 / 0.6132 / 0.3171"),
    "dann": ("feature", "both", "30.09 / 0.7832 / 0.1348"),
    "dsn": ("feature", "both", "28.40 / 0.6984 / 0.2265"),
    "pixelda": ("pixel", "both", "29.24 / 0.7611 / 0.1403"),
    "cycada": ("feature & pixel", "both", "30.81 / 0.8067 / 0.1256"),
    "masked": ("-", "synthetic pairs (the paper's table says real)", "28.51 / 0.7196 / 0.2348"),
    "ne2ne": ("-", "real noisy only", "25.61 / 0.5647 / 0.3039"),
    "noise-da": ("noise", "both", "34.71 / 0.9202 / 0.0903"),
    "noise-da-ex": ("noise", "both + unpaired clean", "33.44 / 0.8938 / 0.1064"),
    "c2n": ("pixel (noise model)", "clean + real noisy", "35.35 / 0.9370 / - (Table 5)"),
    "oracle": ("-", "real pairs", None),
}
ADVERSARIAL = {"dann", "dsn", "pixelda", "cycada"}
DEFAULT_METHODS = ["vanilla", "dann", "dsn", "pixelda", "cycada", "masked", "ne2ne", "c2n", "noise-da"]
DENOISING_ONLY = {"ne2ne", "c2n"}  # left out of the default list for deraining and deblurring


def methods_sweep(config: Optional[str], overrides: list[str], test_sets: dict[str, str], seeds: list[int],
                  methods: Optional[list[str]] = None, oracle_pairs: Optional[str] = None,
                  eval_every: int = 0, adversarial_weight: float = 1.0) -> Sweep:
    from noiseda.config import load_config

    base = [o for o in overrides if not o.startswith("method.name=")]
    cfg = load_config(config, base)
    chosen = list(methods or [m for m in DEFAULT_METHODS if cfg.task == "denoise" or m not in DENOISING_ONLY])
    unknown = [m for m in chosen if m not in PAPER_TABLE1 or m == "oracle"]
    if unknown:
        known = ", ".join(m for m in PAPER_TABLE1 if m != "oracle")
        raise NoisedaError(f"--methods: unknown method {unknown[0]!r} (known: {known}; the oracle comes "
                           "with --oracle-pairs)")
    if "vanilla" not in chosen:
        chosen = ["vanilla", *chosen]  # the reference of every interval
    check_seeds_and_tests(seeds, test_sets, "compare-methods")
    # DANN's schedule: lambda = W (2 / (1 + exp(-10 p)) - 1), p the progress through the whole run.
    schedule = [f"method.lambda_weight={adversarial_weight}", "method.lambda_slope=10.0",
                f"method.lambda_ramp_steps={cfg.train.steps}"]
    variants = {m: [f"method.name={m}"] + (schedule if m in ADVERSARIAL else []) for m in chosen}
    if oracle_pairs:
        variants["oracle"] = ["method.name=oracle", "data.clean=[]", f"data.pairs={oracle_pairs}"]
    return Sweep(config=config, overrides=base, seeds=list(seeds), reference="vanilla", eval_every=eval_every,
                 test_sets=dict(test_sets), variants=variants, oracle="oracle" if oracle_pairs else None)


def methods_markdown(summary: dict, sweep: Sweep, weights: str = "ema") -> str:
    info = {"space": {m: PAPER_TABLE1[m][0] for m in sweep.variants},
            "trained on": {m: PAPER_TABLE1[m][1] for m in sweep.variants}}
    paper = {m: PAPER_TABLE1[m][2] for m in sweep.variants if PAPER_TABLE1[m][2]}
    return variant_table(summary, sweep, weights, "paper SIDD PSNR / SSIM / LPIPS", paper, info)


def run_methods(sweep: Sweep, out: str | Path, **kwargs) -> dict:
    return run_with_table(sweep, out, methods_markdown, "methods.md", **kwargs)
