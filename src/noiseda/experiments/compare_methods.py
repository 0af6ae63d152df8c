"""`noiseda compare-methods`: the paper's Table 1 as a sweep: every method trains the same
restorer on the same data for the same steps and seeds; vanilla is the reference of the paired
intervals; the paper's numbers (real SIDD validation) stand beside ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from noiseda.experiments.ablate import run_with_table, variant_table
from noiseda.errors import NoisedaError
from noiseda.methods import METHODS, TableRow
from noiseda.experiments.sweep import Sweep, check_seeds_and_tests



def table_methods() -> dict[str, TableRow]:
    """Every registered method with a table row, in the table's order (each method declares
    its row in its own file: methods/base.TableRow)."""
    rows = {name: METHODS.get(name).table for name in METHODS.names()}
    return dict(sorted(((n, r) for n, r in rows.items() if r is not None), key=lambda item: (item[1].order, item[0])))


def default_methods(task: str) -> list[str]:
    return [n for n, r in table_methods().items() if r.default and task in r.tasks]


def methods_sweep(config: Optional[str], overrides: list[str], test_sets: dict[str, str], seeds: list[int],
                  methods: Optional[list[str]] = None, oracle_pairs: Optional[str] = None,
                  eval_every: int = 0, adversarial_weight: Optional[float] = None) -> Sweep:
    from noiseda.config import load_config

    base = [o for o in overrides if not o.startswith("method.name=")]
    cfg = load_config(config, base)
    rows = table_methods()
    chosen = list(methods or default_methods(cfg.task))
    unknown = [m for m in chosen if m not in rows or m == "oracle"]
    if unknown:
        known = ", ".join(m for m in rows if m != "oracle")
        raise NoisedaError(f"--methods: unknown method {unknown[0]!r} (known: {known}; the oracle comes "
                           "with --oracle-pairs)")
    if "vanilla" not in chosen:
        chosen = ["vanilla", *chosen]  # the reference of every interval
    check_seeds_and_tests(seeds, test_sets, "compare-methods")
    # The adversarial methods' own schedules (their lambda_defaults), whatever the base config
    # sets for noise-da; --adversarial-weight replaces each one's weight W.
    weight = "null" if adversarial_weight is None else adversarial_weight
    schedule = [f"method.lambda_weight={weight}", "method.lambda_slope=null", "method.lambda_ramp_steps=null"]
    # each method's authors' own restorer or data where it needs them (TableRow.setup)
    variants = {m: [f"method.name={m}"] + (schedule if rows[m].adversarial else []) + list(rows[m].setup)
                for m in chosen}
    if oracle_pairs:
        variants["oracle"] = ["method.name=oracle", "data.clean=[]", f"data.pairs={oracle_pairs}"]
    return Sweep(config=config, overrides=base, seeds=list(seeds), reference="vanilla", eval_every=eval_every,
                 test_sets=dict(test_sets), variants=variants, oracle="oracle" if oracle_pairs else None)


def methods_markdown(summary: dict, sweep: Sweep, weights: str = "ema") -> str:
    rows = table_methods()
    info = {"space": {m: rows[m].space for m in sweep.variants},
            "trained on": {m: rows[m].trained_on for m in sweep.variants}}
    paper = {m: rows[m].paper for m in sweep.variants if rows[m].paper}
    return variant_table(summary, sweep, weights, "paper SIDD PSNR / SSIM / LPIPS", paper, info)


def run_methods(sweep: Sweep, out: str | Path, **kwargs) -> dict:
    return run_with_table(sweep, out, methods_markdown, "methods.md", **kwargs)
