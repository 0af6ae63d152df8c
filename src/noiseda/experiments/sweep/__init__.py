"""`noiseda sweep`: named variants x seeds, trained alike, scored alike, compared with statistics.

A sweep file (YAML) names a base config, overrides shared by every run, the seeds, the test
sets, and the variants (each a list of ``--set`` overrides, e.g. ``[method.name=vanilla]``).
Every (variant, seed) run trains in ``OUT/runs/<variant>/seed-<seed>/`` with the same data,
steps and seed stream, so runs of two variants with the same seed start from the same restorer
weights and see the same batches: differences between them are paired.

During training, the raw and the EMA restorer are scored on every test set every
``eval_every`` steps (the curves); at the end, per image (``scores.json``, which also marks the
run finished: a rerun skips it, and resumes an unfinished run from its last checkpoint).

The package holds one concern per module: `spec` (the sweep file, run configs and folders),
`scoring` (training and scoring one run), `summary` (the statistics), `tables` (Markdown),
`figure` (the curves) and `runner` (planning, the process pool, the folder lock). The names
other modules use are re-exported here.
"""

from noiseda.evaluation.stats import bootstrap_interval, t_interval
from noiseda.experiments.sweep.figure import curves_figure, read_curves
from noiseda.experiments.sweep.runner import SWEEP_LOCK, plan, run_sweep, usable_cores
from noiseda.experiments.sweep.scoring import METRICS, WEIGHTS, TestSets, train_and_score
from noiseda.experiments.sweep.spec import (
    SWEEP_KEYS, Sweep, check_seeds_and_tests, load_sweep, run_config, run_dir,
)
from noiseda.experiments.sweep.summary import summarize
from noiseda.experiments.sweep.tables import gap_cell, summary_markdown

__all__ = [
    "METRICS", "SWEEP_KEYS", "SWEEP_LOCK", "WEIGHTS", "Sweep", "TestSets", "bootstrap_interval",
    "check_seeds_and_tests", "curves_figure", "gap_cell", "load_sweep", "plan", "read_curves", "run_config",
    "run_dir", "run_sweep", "summarize", "summary_markdown", "t_interval", "train_and_score", "usable_cores",
]
