"""`noiseda sweep`: named variants x seeds, trained alike, scored alike, compared with statistics.

A sweep file (YAML) names a base config, overrides shared by every run, the seeds, the test
sets, and the variants (each a list of ``--set`` overrides, e.g. ``[method.name=vanilla]``).
Every (variant, seed) run trains in ``OUT/runs/<variant>/seed-<seed>/`` with the same data,
steps and seed stream, so runs of two variants with the same seed start from the same restorer
weights and see the same batches: differences between them are paired.

During training, the raw and the EMA restorer are scored on every test set every
``eval_every`` steps (the curves); at the end, per image (``scores.json``, which also marks the
run finished: a rerun skips it, and resumes an unfinished run from its last checkpoint).

The summary gives, per variant, test set and weights, the mean and standard deviation over
seeds of the per-run mean PSNR/SSIM, and the paired difference to the reference variant with
two 95% confidence intervals:

- ``t``: a paired t-interval over seeds, d_s = score(variant, s) - score(reference, s); with 3
  seeds its t quantile is 4.30, so it is wide, and it is the one the verdicts use;
- ``bootstrap``: percentile interval of a two-level bootstrap that resamples seeds and, within
  them, images (the same image draw for both variants), 2000 resamples, fixed seed. With few
  seeds it is narrower than the t-interval and optimistic; it is reported beside it.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from noiseda.errors import NoisedaError
from noiseda.training.folder_lock import folder_lock
from noiseda.evaluation.stats import bootstrap_interval, ratio_interval, sample_sd, t_interval

SWEEP_KEYS = {"config", "set", "seeds", "reference", "oracle", "oracle_test_sets", "eval_every", "test_sets",
              "variants"}
METRICS = ("psnr", "ssim")
WEIGHTS = ("ema", "raw")
SWEEP_LOCK = "sweep.lock"
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


@dataclass
class Sweep:
    config: Optional[str]  # base training config: packaged name or YAML path
    overrides: list[str]  # shared by every run
    seeds: list[int]
    reference: str
    eval_every: int
    test_sets: dict[str, str]  # name -> pairs folder (or ADAPTER:PATH)
    variants: dict[str, list[str]]  # name -> overrides
    # A variant trained on the real domain's own pairs (the upper bound): tables gain "gap
    # closed", (variant - reference) / (oracle - reference).
    oracle: Optional[str] = None
    # The test sets of the oracle's own domain (an oracle of one domain bounds nothing on
    # another); None: every test set.
    oracle_test_sets: Optional[list[str]] = None

    def gap_sets(self) -> list[str]:
        """The test sets that get a "gap closed" column."""
        if not self.oracle:
            return []
        return [t for t in self.test_sets if self.oracle_test_sets is None or t in self.oracle_test_sets]

    def as_file(self) -> dict:
        """The sweep as a file would state it, variables expanded (saved beside the runs)."""
        return {"config": self.config, "set": self.overrides, "seeds": self.seeds, "reference": self.reference,
                **({"oracle": self.oracle} if self.oracle else {}),
                **({"oracle_test_sets": self.oracle_test_sets} if self.oracle_test_sets is not None else {}),
                "eval_every": self.eval_every, "test_sets": self.test_sets, "variants": self.variants}


def check_seeds_and_tests(seeds: list[int], test_sets: dict[str, str], command: str) -> None:
    """What every sweep-building command checks of its seeds and test sets."""
    if not test_sets:
        raise NoisedaError(f"{command} needs at least one --test-set NAME=PAIRS")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise NoisedaError(f"--seeds: expected distinct non-negative integers, got {seeds}")


def _expand(value: str, where: str) -> str:
    """$VAR / ${VAR} from the environment, so sweep files name data by a variable (DATA=...)."""

    def sub(m):
        if m.group(1) not in os.environ:
            raise NoisedaError(f"sweep {where}: environment variable {m.group(1)} is not set (in {value!r})")
        return os.environ[m.group(1)]

    return _VAR.sub(sub, value)


def _str_list(value, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NoisedaError(f"sweep {where}: expected a list of KEY=VALUE strings, got {value!r}")
    return [_expand(v, where) for v in value]


def load_sweep(path: str | Path, extra_overrides: list[str] = (), seeds: Optional[list[int]] = None) -> Sweep:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise NoisedaError(f"sweep file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NoisedaError(f"cannot read sweep file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise NoisedaError(f"sweep file {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise NoisedaError(f"sweep file {path}: expected a mapping of {', '.join(sorted(SWEEP_KEYS))}")
    unknown = set(data) - SWEEP_KEYS
    if unknown:
        raise NoisedaError(f"sweep file {path}: unknown key {sorted(unknown)[0]!r} "
                           f"(known: {', '.join(sorted(SWEEP_KEYS))})")
    variants = data.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise NoisedaError(f"sweep file {path}: 'variants' must map names to lists of overrides")
    for name in variants:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
            raise NoisedaError(f"sweep file {path}: variant name {name!r} must be letters, digits, _ . + -")
    seeds = list(seeds) if seeds else data.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise NoisedaError(f"sweep file {path}: 'seeds' must be a list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise NoisedaError(f"sweep file {path}: 'seeds' repeats a seed: {seeds}")
    reference = data.get("reference", next(iter(variants)))
    if reference not in variants:
        raise NoisedaError(f"sweep file {path}: reference {reference!r} is not a variant")
    oracle = data.get("oracle")
    if oracle is not None and (oracle not in variants or oracle == reference):
        raise NoisedaError(f"sweep file {path}: oracle {oracle!r} must be a variant other than the reference")
    oracle_sets = data.get("oracle_test_sets")
    every = data.get("eval_every", 0)
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise NoisedaError(f"sweep file {path}: 'eval_every' must be an integer >= 0 (0: at the end only)")
    tests = data.get("test_sets")
    if not isinstance(tests, dict) or not tests or not all(isinstance(v, str) for v in tests.values()):
        raise NoisedaError(f"sweep file {path}: 'test_sets' must map names to folders of pairs")
    config = data.get("config")
    if config is not None and not isinstance(config, str):
        raise NoisedaError(f"sweep file {path}: 'config' must be a config name or path")
    return Sweep(
        config=_expand(config, "config") if config else None,
        overrides=_str_list(data.get("set"), "set") + list(extra_overrides),
        seeds=seeds,
        reference=reference,
        eval_every=every,
        test_sets={str(k): _expand(v, f"test_sets.{k}") for k, v in tests.items()},
        variants={str(k): _str_list(v, f"variants.{k}") for k, v in variants.items()},
        oracle=oracle,
        oracle_test_sets=_oracle_sets(oracle_sets, oracle, tests, path),
    )


def _oracle_sets(value, oracle, tests: dict, path) -> Optional[list[str]]:
    if value is None:
        return None
    if not oracle:
        raise NoisedaError(f"sweep file {path}: 'oracle_test_sets' needs an 'oracle'")
    if not isinstance(value, list) or not value or any(v not in tests for v in value):
        raise NoisedaError(f"sweep file {path}: 'oracle_test_sets' must list test sets of 'test_sets', got {value!r}")
    return [str(v) for v in value]


def run_config(sweep: Sweep, variant: str, seed: int, threads: int = 0):
    """The resolved config of one run; a run's own overrides come after the shared ones."""
    from noiseda.config import load_config, validate

    extra = [f"train.seed={seed}"] + ([f"train.threads={threads}"] if threads else [])
    if sweep.eval_every:
        extra.append(f"train.val_every={sweep.eval_every}")
    cfg = load_config(sweep.config, sweep.overrides + sweep.variants[variant] + extra)
    validate(cfg)
    return cfg


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / "runs" / variant / f"seed-{seed}"


def _comparable(cfg_dict: dict) -> dict:
    """What must match for a finished run to count as this sweep's run (threads may differ;
    paths are compared absolute, as runs store them)."""
    from noiseda.config import absolute_paths

    d = absolute_paths(cfg_dict)
    d["train"].pop("threads", None)
    return d


# ----------------------------------------------------------------------------- scoring


class TestSets:
    """The test pairs, decoded once per process; scores a restorer on all of them."""

    def __init__(self, test_sets: dict[str, str]):
        from noiseda.data.datasets import load_pairs, load_tensor

        self.sets = {}
        for name, spec in test_sets.items():
            items = []
            for x_path, y_path in load_pairs(spec, f"test set {name}"):
                x, y = load_tensor(x_path), load_tensor(y_path)
                if x.shape != y.shape:
                    raise NoisedaError(f"test set {name}: size mismatch {x_path} {tuple(x.shape)} "
                                       f"vs {y_path} {tuple(y.shape)}")
                items.append((x_path.name, x, y))
            self.sets[name] = items

    def score(self, net, value_range, y_channel: bool, device, with_ssim: bool) -> dict[str, list[dict]]:
        import torch

        from noiseda.inference.tiling import restore_safely
        from noiseda.evaluation.metrics import psnr, ssim

        was_training = net.training
        net.eval()
        out = {}
        try:
            with torch.inference_mode():
                for name, items in self.sets.items():
                    rows = []
                    for image, x, y in items:
                        restored = restore_safely(net, x, value_range, 512, 32, device)
                        row = {"image": image, "psnr": psnr(restored, y, y_channel)}
                        if with_ssim:
                            row["ssim"] = ssim(restored, y, y_channel)
                        rows.append(row)
                    out[name] = rows
        finally:
            net.train(was_training)
        return out

    def inputs(self, y_channel: bool) -> dict[str, list[dict]]:
        from noiseda.evaluation.metrics import psnr, ssim

        return {name: [{"image": i, "psnr": psnr(x, y, y_channel), "ssim": ssim(x, y, y_channel)}
                       for i, x, y in items] for name, items in self.sets.items()}


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def train_and_score(sweep: Sweep, out: Path, variant: str, seed: int, threads: int, progress: bool) -> dict:
    """Train one run (resuming it if it has checkpoints) and write its per-image scores."""
    import torch

    from noiseda.training.checkpoint import list_checkpoints, load_checkpoint
    from noiseda.inference.export import load_restorer
    from noiseda.data.io import write_atomic
    from noiseda.training.loop import train

    cfg = run_config(sweep, variant, seed, threads)
    run = run_dir(out, variant, seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tests = TestSets(sweep.test_sets)
    y_channel = cfg.task == "derain"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def curve_point(step: int, nets: dict) -> dict:
        values = {}
        for weights, net in nets.items():
            for name, rows in tests.score(net, cfg.data.value_range, y_channel, device, False).items():
                values[f"sweep/{name}/{weights}/psnr"] = _mean(rows, "psnr")
        return values

    tic = time.perf_counter()
    resume = bool(list_checkpoints(run))  # a run stopped before its first checkpoint starts over
    train(cfg, run, resume=resume, overwrite=not resume, progress=progress,
          evaluator=curve_point if sweep.eval_every else None)
    seconds = time.perf_counter() - tic
    ema_net, spec = load_restorer(run / "final", device)
    raw_net = copy.deepcopy(ema_net)  # the same net, given the raw weights below
    last = load_checkpoint(list_checkpoints(run)[-1])
    raw_net.load_state_dict({k[len("restorer."):]: v for k, v in last["model"].items() if k.startswith("restorer.")})
    scores = {w: tests.score(n, spec["value_range"], y_channel, device, True)
              for w, n in (("ema", ema_net), ("raw", raw_net))}
    result = {"variant": variant, "seed": seed, "steps": last["state"]["step"],
              "train_seconds_this_session": seconds, "scores": scores,
              "input": tests.inputs(y_channel)}
    write_atomic(run / "scores.json", json.dumps(result, indent=1).encode())
    return result


def _worker(args) -> tuple[str, int, Optional[str]]:
    """One run in a fresh process (parallel sweeps); returns an error line instead of raising."""
    sweep, out, variant, seed, threads = args
    try:
        train_and_score(sweep, out, variant, seed, threads, progress=False)
        return variant, seed, None
    except NoisedaError as exc:
        return variant, seed, str(exc)
    except Exception as exc:  # one failed run must not take the others down; it is named below
        return variant, seed, f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------- statistics


def summarize(results: dict[tuple[str, int], dict], sweep: Sweep) -> dict:
    """Per variant x test set x weights x metric: mean and sd over seeds; the paired difference
    to the reference with its t and bootstrap intervals."""
    table: dict = {}
    ref = sweep.reference
    for variant in sweep.variants:
        seeds = sorted(s for (v, s) in results if v == variant)
        if not seeds:
            continue
        table[variant] = {}
        for test in sweep.test_sets:
            table[variant][test] = {}
            for weights in WEIGHTS:
                entry = {}
                for metric in METRICS:
                    per_seed = {s: results[(variant, s)]["scores"][weights][test] for s in seeds}
                    means = [_mean(per_seed[s], metric) for s in seeds]
                    e = {"mean": sum(means) / len(means), "sd": sample_sd(means), "seeds": seeds, "per_seed": means}
                    paired = [s for s in seeds if (ref, s) in results] if variant != ref else []
                    if paired:
                        rows = [[a[metric] - b[metric] for a, b in
                                 zip(per_seed[s], results[(ref, s)]["scores"][weights][test])] for s in paired]
                        diffs = [sum(r) / len(r) for r in rows]
                        t_ci = t_interval(diffs)
                        e["diff"] = {"reference": ref, "seeds": paired, "mean": sum(diffs) / len(diffs),
                                     "per_seed": diffs, "ci95_t": t_ci, "ci95_bootstrap": bootstrap_interval(rows),
                                     "verdict": _verdict(t_ci)}
                        gap = _gap_closed(results, sweep, variant, test, weights, metric, paired)
                        if gap is not None:
                            e["gap_closed"] = gap
                    entry[metric] = e
                table[variant][test][weights] = entry
    any_run = next(iter(results.values()))
    inputs = {t: {m: _mean(rows, m) for m in METRICS} for t, rows in any_run["input"].items()}
    return {"reference": ref, "test_sets": sweep.test_sets, "input": inputs, "table": table,
            "ci_method": {"ci95_t": "paired t-interval over seeds of the per-seed mean difference",
                          "ci95_bootstrap": "percentile, 2000 resamples of seeds then images (paired)"}}


def _gap_closed(results, sweep: Sweep, variant: str, test: str, weights: str, metric: str,
                seeds: list[int]) -> Optional[dict]:
    """(variant - reference) / (oracle - reference) over the seeds all three share, with the
    ratio's delta-method t-interval; None without an oracle (or for the oracle itself)."""
    oracle, ref = sweep.oracle, sweep.reference
    if not oracle or variant == oracle or test not in sweep.gap_sets():
        return None
    seeds = [s for s in seeds if (oracle, s) in results]
    if not seeds:
        return None

    def mean(v, s):
        return _mean(results[(v, s)]["scores"][weights][test], metric)

    gains = [mean(variant, s) - mean(ref, s) for s in seeds]
    room = [mean(oracle, s) - mean(ref, s) for s in seeds]
    ratio, ci = ratio_interval(gains, room)
    return {"oracle": oracle, "seeds": seeds, "gap": sum(room) / len(room), "mean": ratio, "ci95_t": ci}


def _verdict(ci: Optional[tuple[float, float]]) -> str:
    if ci is None:
        return "one seed: no interval"
    if ci[0] > 0:
        return "better"
    if ci[1] < 0:
        return "worse"
    return "no clear difference"


def _ci(ci, digits: int) -> str:
    return "-" if ci is None else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def summary_markdown(summary: dict, sweep: Sweep, metric: str = "psnr") -> str:
    digits = 2 if metric == "psnr" else 4
    lines = []
    for weights in WEIGHTS:
        head = ["variant", "seeds"]
        for test in sweep.test_sets:
            head += [f"{test} {metric.upper()}", f"{test} diff [95% CI t] (bootstrap)"]
            if test in sweep.gap_sets():
                head.append(f"{test} gap closed [95% CI]")
        lines += [f"**{weights.upper()} weights**, {metric.upper()}: mean +- sd over seeds; paired difference "
                  f"to `{summary['reference']}`", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        cells = ["noisy input", "-"]
        for test in sweep.test_sets:
            cells += [f"{summary['input'][test][metric]:.{digits}f}", ""] + ([""] if test in sweep.gap_sets() else [])
        lines.append("| " + " | ".join(cells) + " |")
        for variant, per_test in summary["table"].items():
            first = per_test[next(iter(per_test))][weights][metric]
            cells = [variant, str(len(first["seeds"]))]
            for test in sweep.test_sets:
                e = per_test[test][weights][metric]
                sd = "" if e["sd"] is None else f" +- {e['sd']:.{digits}f}"
                cells.append(f"{e['mean']:.{digits}f}{sd}")
                d = e.get("diff")
                if d is None:
                    cells.append("reference" if variant == summary["reference"] else "-")
                else:
                    cells.append(f"{d['mean']:+.{digits}f} {_ci(d['ci95_t'], digits)} ({_ci(d['ci95_bootstrap'], digits)[1:-1]})"
                                 if d["ci95_t"] else f"{d['mean']:+.{digits}f}")
                if test in sweep.gap_sets():
                    cells.append(gap_cell(e, variant, summary["reference"], sweep.oracle))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def gap_cell(entry: dict, variant: str, reference: str, oracle: str) -> str:
    """The "gap closed" table cell: a share of the oracle's gain over the reference."""
    if variant == reference:
        return "0 (reference)"
    if variant == oracle:
        return "1 (oracle)"
    g = entry.get("gap_closed")
    if g is None:
        return "-"
    if g["mean"] is None:
        return "no gap (oracle not above the reference)"
    return f"{g['mean']:+.2f}" + ("" if g["ci95_t"] is None else f" {_ci(g['ci95_t'], 2)}")


def read_curves(out: Path, variant: str, seed: int) -> dict[str, list[tuple[int, float]]]:
    path = run_dir(out, variant, seed) / "metrics.jsonl"
    curves: dict[str, list[tuple[int, float]]] = {}
    if not path.is_file():
        return curves
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        for k, v in rec.items():
            if k.startswith("sweep/"):
                curves.setdefault(k[len("sweep/"):], []).append((rec["step"], v))
    return curves


def curves_figure(out: Path, sweep: Sweep, summary: dict, path: Path) -> bool:
    """PSNR against step, one column per test set, EMA weights on top and raw below: the mean
    over the seeds of the summary (finished runs only) per variant, with a band from the lowest
    to the highest seed; the noisy input dotted."""
    from noiseda.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    if plt is None:
        return False
    tests = list(sweep.test_sets)
    fig, axes = plt.subplots(2, len(tests), figsize=(4.6 * len(tests), 6.6), squeeze=False, sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, test in enumerate(tests):
        for row, weights in enumerate(WEIGHTS):
            ax = axes[row][col]
            for vi, (variant, per_test) in enumerate(summary["table"].items()):
                seeds = per_test[test][weights]["psnr"]["seeds"]
                series = [dict(read_curves(out, variant, s).get(f"{test}/{weights}/psnr", [])) for s in seeds]
                series = [s for s in series if s]
                steps = sorted(set.intersection(*(set(s) for s in series))) if series else []
                if not steps:
                    continue
                vals = [[s[k] for s in series] for k in steps]
                color = colors[vi % len(colors)]
                ax.plot(steps, [sum(v) / len(v) for v in vals], color=color, label=f"{variant} ({len(series)} seeds)")
                if len(series) > 1:
                    ax.fill_between(steps, [min(v) for v in vals], [max(v) for v in vals], color=color, alpha=0.12,
                                    linewidth=0)
            ax.axhline(summary["input"][test]["psnr"], color="grey", linestyle=":", label="noisy input")
            ax.set_title(f"{test}, {weights.upper()} weights", fontsize=10)
            ax.set_ylabel("PSNR (dB)")
            ax.grid(alpha=0.3)
            if row == len(WEIGHTS) - 1:
                ax.set_xlabel("step")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    save_figure(fig, path, rect=(0, 0.1, 1, 1))
    return True


# ----------------------------------------------------------------------------- driver


def plan(sweep: Sweep, out: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(finished, to do), in seed-major order so that paired runs finish close together.
    A finished run must have been trained with this sweep's config for it."""
    from noiseda.config import config_from_dict, config_to_dict

    done, todo = [], []
    for seed in sweep.seeds:
        for variant in sweep.variants:
            run = run_dir(out, variant, seed)
            want = _comparable(config_to_dict(run_config(sweep, variant, seed)))
            saved = run / "config.yaml"
            if saved.is_file():
                # Read back through the config types: fields added since it was saved take their defaults.
                try:
                    have = _comparable(config_to_dict(config_from_dict(yaml.safe_load(saved.read_text()))))
                except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
                    raise NoisedaError(f"{saved}: unreadable ({exc.__class__.__name__}); delete that run") from None
                if have != want:
                    diff = _first_difference(have, want)
                    raise NoisedaError(f"{run} was trained with another config ({diff}); "
                                       "use a new --out, or delete that run")
            (done if (run / "scores.json").is_file() else todo).append((variant, seed))
    return done, todo


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.')}: {a!r} there, {b!r} now"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_sweep(sweep: Sweep, out: str | Path, jobs: int = 1, progress: bool = True,
              summary_only: bool = False, threads: int = 0) -> dict:
    out = Path(out)
    done, todo = plan(sweep, out)
    if not todo or summary_only:
        return _run_planned(sweep, out, done, todo, jobs, progress, summary_only, threads)
    # One sweep per folder: two would train the same unfinished runs at once.
    with folder_lock(out, SWEEP_LOCK, hint="wait for that sweep, or use another --out"):
        return _run_planned(sweep, out, done, todo, jobs, progress, summary_only, threads)


def _run_planned(sweep: Sweep, out: Path, done: list, todo: list, jobs: int, progress: bool,
                 summary_only: bool, threads: int = 0) -> dict:
    if summary_only:
        todo = []
    if todo:
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.yaml").write_text(yaml.safe_dump(sweep.as_file(), sort_keys=False))
        print(f"sweep: {len(done)} runs finished, {len(todo)} to run ({jobs} at a time)", file=sys.stderr)
    threads = threads or (max(1, usable_cores() // jobs) if jobs > 1 else 0)  # per run
    failures = []
    if jobs > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
        from concurrent.futures import wait as futures_wait

        kwargs = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), **kwargs) as pool:
            # At most `jobs` runs are handed to the pool at a time: a run queued inside the pool
            # could not be cancelled and would start after a Ctrl-C.
            waiting, running = iter(todo), set()

            def start_next() -> None:
                run = next(waiting, None)
                if run is not None:
                    running.add(pool.submit(_worker, (sweep, out, *run, threads)))

            try:
                for _ in range(jobs):
                    start_next()
                while running:
                    finished, _ = futures_wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        running.discard(future)
                        variant, seed, error = future.result()
                        print(f"sweep: {variant} seed {seed}: {error or 'done'}", file=sys.stderr)
                        if error:
                            failures.append(f"{variant} seed {seed}: {error}")
                        start_next()
            except KeyboardInterrupt:  # the running ones save a checkpoint and stop; start no others
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    else:
        for variant, seed in todo:
            print(f"sweep: {variant} seed {seed}", file=sys.stderr)
            train_and_score(sweep, out, variant, seed, threads, progress)
    if failures:
        raise NoisedaError(f"{len(failures)} runs failed, first: {failures[0]}")

    results = {}
    for variant in sweep.variants:
        for seed in sweep.seeds:
            path = run_dir(out, variant, seed) / "scores.json"
            if path.is_file():
                results[(variant, seed)] = json.loads(path.read_text())
    if not results:
        raise NoisedaError(f"{out}: no finished runs to summarise")
    summary = summarize(results, sweep)
    summary["sweep"] = sweep.as_file()
    from noiseda.data.io import write_atomic

    md = summary_markdown(summary, sweep, "psnr") + "\n" + summary_markdown(summary, sweep, "ssim")
    write_atomic(out / "summary.json", json.dumps(summary, indent=1).encode())
    write_atomic(out / "summary.md", md.encode())
    summary["figure"] = curves_figure(out, sweep, summary, out / "curves.png")
    summary["markdown"] = md
    return summary
