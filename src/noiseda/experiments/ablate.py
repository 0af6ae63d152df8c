"""`noiseda ablate`: the paper's Table 4 as a sweep, with the paper's numbers beside ours.

Every variant is noise-da with one part changed; the full method is the reference of the
paired confidence intervals. The paper's t-range rows have channel shuffling and residual
swapping off (its table adds them on top of the full range), so ours do too. The two
single-domain rows fill both condition slots with one domain, shuffling and swapping off
(neither the paper nor the reference code defines them; this is the assumption stated in
docs/methods.md). ``vanilla`` is added as a floor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from noiseda.errors import NoisedaError
from noiseda.experiments.sweep import Sweep, check_seeds_and_tests, gap_cell, run_sweep

_OFF = ["method.options.noise-da.channel_shuffle=false", "method.options.noise-da.residual_swap=false"]

ABLATIONS: dict[str, list[str]] = {
    "full": [],
    "no-rs": ["method.options.noise-da.residual_swap=false"],
    "no-cs": ["method.options.noise-da.channel_shuffle=false"],
    "no-cs-no-rs": _OFF,
    "t-1-100": ["method.options.noise-da.t_range=[1,100]", *_OFF],
    "t-900-999": ["method.options.noise-da.t_range=[900,999]", *_OFF],
    "only-synthetic": ["method.options.noise-da.condition=synthetic", *_OFF],
    "only-real": ["method.options.noise-da.condition=real", *_OFF],
    "vanilla": ["method.name=vanilla"],
}

# The paper's Table 4 (real SIDD validation, PSNR / SSIM), for reading ours beside it.
PAPER_TABLE4: dict[str, Optional[tuple[float, float]]] = {
    "full": (34.71, 0.9202),
    "no-rs": (32.91, 0.9082),
    "no-cs": None,  # not in the paper
    "no-cs-no-rs": (32.07, 0.8706),
    "t-1-100": (16.77, 0.6070),
    "t-900-999": (27.36, 0.6590),
    "only-synthetic": (26.83, 0.6286),
    "only-real": (32.60, 0.8831),
    "vanilla": (26.58, 0.6132),  # the paper's Table 1 baseline
}


def ablation_sweep(config: Optional[str], overrides: list[str], test_sets: dict[str, str], seeds: list[int],
                   variants: Optional[list[str]] = None, eval_every: int = 0) -> Sweep:
    chosen = variants or list(ABLATIONS)
    unknown = [v for v in chosen if v not in ABLATIONS]
    if unknown:
        raise NoisedaError(f"--variants: unknown ablation {unknown[0]!r} (known: {', '.join(ABLATIONS)})")
    if "full" not in chosen:
        chosen = ["full", *chosen]  # the reference of every interval
    check_seeds_and_tests(seeds, test_sets, "ablate")
    base = [o for o in overrides if not o.startswith("method.name=")]
    variants_overrides = {
        v: ([] if v == "vanilla" else ["method.name=noise-da"]) + ABLATIONS[v] for v in chosen
    }
    return Sweep(config=config, overrides=base, seeds=list(seeds), reference="full", eval_every=eval_every,
                 test_sets=dict(test_sets), variants=variants_overrides)


def variant_table(summary: dict, sweep: Sweep, weights: str, paper_head: str, paper: dict[str, str],
                  info: Optional[dict[str, dict[str, str]]] = None) -> str:
    """One line per variant: descriptive columns (``info``: head -> variant -> text), our PSNR
    per test set (mean +- sd over seeds), the paired difference to the sweep's reference with
    its 95% t-interval, and the paper's numbers (``paper``: variant -> text)."""
    tests, info = list(sweep.test_sets), info or {}
    ref = summary["reference"]
    gap_sets = sweep.gap_sets()
    head = ["variant", *info, "seeds", *[f"{t} PSNR" for t in tests], *[f"{t} diff to {ref} [95% CI]" for t in tests],
            *[f"{t} gap closed [95% CI]" for t in gap_sets], paper_head]
    lines = [f"**{weights.upper()} weights**: PSNR mean +- sd over seeds; difference to `{ref}` paired by seed",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, per_test in summary["table"].items():
        cells = [variant, *[col.get(variant, "") for col in info.values()],
                 str(len(per_test[tests[0]][weights]["psnr"]["seeds"]))]
        diffs = []
        for t in tests:
            e = per_test[t][weights]["psnr"]
            cells.append(f"{e['mean']:.2f}" + ("" if e["sd"] is None else f" +- {e['sd']:.2f}"))
            d = e.get("diff")
            if d is None:
                diffs.append("reference" if variant == ref else "-")
            elif d["ci95_t"] is None:
                diffs.append(f"{d['mean']:+.2f}")
            else:
                lo, hi = d["ci95_t"]
                diffs.append(f"{d['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}]")
        gaps = [gap_cell(per_test[t][weights]["psnr"], variant, ref, sweep.oracle) for t in gap_sets]
        lines.append("| " + " | ".join(cells + diffs + gaps + [paper.get(variant, "-")]) + " |")
    return "\n".join(lines) + "\n"


def ablation_markdown(summary: dict, sweep: Sweep, weights: str = "ema") -> str:
    paper = {v: f"{p[0]:.2f} / {p[1]:.4f}" for v, p in PAPER_TABLE4.items() if p is not None}
    return variant_table(summary, sweep, weights, "paper SIDD PSNR / SSIM", paper)


def run_with_table(sweep: Sweep, out: str | Path, render, filename: str, jobs: int = 1, progress: bool = True,
                   summary_only: bool = False) -> dict:
    """Run (or summarise) the sweep, then write ``render``'s table for EMA and raw weights to
    ``out/filename``; the summary gains it as ``table_markdown``."""
    from noiseda.data.io import write_atomic

    summary = run_sweep(sweep, out, jobs=jobs, progress=progress, summary_only=summary_only)
    md = "\n".join(render(summary, sweep, w) for w in ("ema", "raw"))
    write_atomic(Path(out) / filename, md)
    summary["table_markdown"] = md
    return summary


def run_ablation(sweep: Sweep, out: str | Path, **kwargs) -> dict:
    return run_with_table(sweep, out, ablation_markdown, "ablation.md", **kwargs)
