import json
import math

import pytest
import yaml

from noiseda.cli import main
from noiseda.errors import NoisedaError
from noiseda.experiments.sweep import (
    Sweep, bootstrap_interval, load_sweep, run_sweep, summarize, summary_markdown, t_interval,
)

from conftest import TINY


def _sweep_file(tmp_path, dataset, **changes):
    data = {
        "set": TINY + [f"data.clean={dataset['clean']}", "data.real=${REAL}", "train.steps=4",
                       "train.checkpoint_every=2"],
        "seeds": [0, 1],
        "reference": "vanilla",
        "eval_every": 2,
        "test_sets": {"val": str(dataset["val"]), "again": str(dataset["val"])},
        "variants": {"vanilla": ["method.name=vanilla"], "vanilla-twin": ["method.name=vanilla"],
                     "noise-da": ["method.name=noise-da"]},
    } | changes
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def real_env(dataset, monkeypatch):
    monkeypatch.setenv("REAL", str(dataset["real"]))


def test_sweep_trains_every_variant_and_seed_pairs_them_and_resumes(tmp_path, dataset, real_env, monkeypatch):
    out = tmp_path / "out"
    sweep = load_sweep(_sweep_file(tmp_path, dataset))
    summary = run_sweep(sweep, out, progress=False)
    for variant in sweep.variants:
        for seed in (0, 1):
            run = out / "runs" / variant / f"seed-{seed}"
            scores = json.loads((run / "scores.json").read_text())
            assert scores["steps"] == 4 and set(scores["scores"]) == {"ema", "raw"}
            assert len(scores["scores"]["raw"]["val"]) == 2  # per image
            # the curve: raw and EMA on both test sets at every eval step
            logged = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
            curve_steps = [r["step"] for r in logged if "sweep/val/raw/psnr" in r]
            assert curve_steps == [2, 4]
            assert all("sweep/again/ema/psnr" in r for r in logged if "sweep/val/raw/psnr" in r)
    table = summary["table"]
    # Same seed => same initial weights and batches: an identical variant differs by exactly 0.
    twin = table["vanilla-twin"]["val"]["raw"]["psnr"]["diff"]
    assert twin["per_seed"] == [0.0, 0.0] and twin["ci95_t"] == (0.0, 0.0)
    assert twin["ci95_bootstrap"] == (0.0, 0.0)
    nda = table["noise-da"]["val"]["ema"]["psnr"]
    assert nda["diff"]["seeds"] == [0, 1] and nda["diff"]["per_seed"][0] != 0.0
    assert "diff" not in table["vanilla"]["val"]["ema"]["psnr"]  # the reference itself
    assert (out / "summary.md").is_file() and (out / "curves.png").is_file()
    md = (out / "summary.md").read_text()
    assert md.count("| noise-da | 2 |") == 4  # one line per variant in each of 4 tables

    # A rerun trains nothing: every run is finished.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("noiseda.experiments.sweep.runner.train_and_score", no_training)
    again = run_sweep(sweep, out, progress=False)
    assert again["table"] == summary["table"]


def test_sweep_resumes_an_unfinished_run_and_adds_seeds(tmp_path, dataset, real_env):
    out = tmp_path / "out"
    sweep = load_sweep(_sweep_file(tmp_path, dataset, variants={"vanilla": ["method.name=vanilla"]}), seeds=[0])
    run_sweep(sweep, out, progress=False)
    run = out / "runs" / "vanilla" / "seed-0"
    first = json.loads((run / "scores.json").read_text())
    # Lose the scores and the last checkpoint: the run is unfinished and resumes from step 2.
    (run / "scores.json").unlink()
    import shutil

    from noiseda.training.checkpoint import list_checkpoints

    shutil.rmtree(list_checkpoints(run)[-1])
    assert [c.name for c in list_checkpoints(run)] == ["step-00000002"]
    run_sweep(sweep, out, progress=False)
    resumed = json.loads((run / "scores.json").read_text())
    assert resumed["scores"] == first["scores"]  # exact resume: the same weights, the same scores
    # A new seed on the command line adds runs beside the finished ones.
    more = run_sweep(load_sweep(_sweep_file(tmp_path, dataset, variants={"vanilla": ["method.name=vanilla"]}),
                                seeds=[0, 1]), out, progress=False)
    assert more["table"]["vanilla"]["val"]["ema"]["psnr"]["seeds"] == [0, 1]


def test_sweep_refuses_a_finished_run_with_another_config(tmp_path, dataset, real_env):
    out = tmp_path / "out"
    path = _sweep_file(tmp_path, dataset, variants={"vanilla": ["method.name=vanilla"]}, seeds=[0])
    run_sweep(load_sweep(path), out, progress=False)
    # A config field added to noiseda after the run was trained takes its default: still this run.
    saved = out / "runs" / "vanilla" / "seed-0" / "config.yaml"
    cfg = yaml.safe_load(saved.read_text())
    del cfg["train"]["diffusion_lr"]
    saved.write_text(yaml.safe_dump(cfg))
    from noiseda.experiments.sweep import plan

    assert plan(load_sweep(path), out) == ([("vanilla", 0)], [])
    with pytest.raises(NoisedaError, match="another config .*train.lr"):
        run_sweep(load_sweep(path, ["train.lr=0.001"]), out, progress=False)


def test_sweep_cli_parallel_jobs(tmp_path, dataset, real_env, capsys):
    path = _sweep_file(tmp_path, dataset, variants={"vanilla": ["method.name=vanilla"],
                                                     "noise-da": ["method.name=noise-da"]}, seeds=[3])
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--jobs", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| noise-da | 1 |" in printed and "summary.md" in printed
    cfg = yaml.safe_load((tmp_path / "out" / "runs" / "noise-da" / "seed-3" / "config.yaml").read_text())
    assert cfg["train"]["threads"] >= 1 and cfg["train"]["seed"] == 3


@pytest.mark.parametrize("change, message", [
    ({"variants": {}}, "'variants' must map"),
    ({"reference": "nope"}, "reference 'nope' is not a variant"),
    ({"seeds": [0, 0]}, "repeats a seed"),
    ({"seeds": ["a"]}, "non-negative integers"),
    ({"eval_every": -1}, "'eval_every'"),
    ({"test_sets": ["x"]}, "'test_sets' must map"),
    ({"varients": {}}, "unknown key 'varients'"),
    ({"variants": {"a b": []}}, "variant name 'a b'"),
    ({"variants": {"a": "method.name=vanilla x"}, "reference": "a", "set": 3}, "'set'|set: expected a list"),
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, dataset, real_env, change, message):
    with pytest.raises(NoisedaError, match=message):
        load_sweep(_sweep_file(tmp_path, dataset, **change))


def test_unset_variable_and_missing_file(tmp_path, dataset, monkeypatch, capsys):
    monkeypatch.delenv("REAL", raising=False)
    with pytest.raises(NoisedaError, match="environment variable REAL is not set"):
        load_sweep(_sweep_file(tmp_path, dataset))
    assert main(["sweep", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep file not found" in err
    assert not (tmp_path / "o").exists()


def test_t_interval_on_a_constructed_example():
    lo, hi = t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.3027
    half = 4.302652729911275 / math.sqrt(3)
    assert lo == pytest.approx(2 - half, abs=1e-9) and hi == pytest.approx(2 + half, abs=1e-9)
    assert t_interval([0.5]) is None


def test_bootstrap_interval_on_constructed_examples():
    assert bootstrap_interval([[0.3, 0.3], [0.3, 0.3], [0.3, 0.3]]) == pytest.approx((0.3, 0.3))
    # Seeds differ by +-1 around 0, images agree: the interval straddles 0 and stays within [-1, 1].
    lo, hi = bootstrap_interval([[1.0] * 5, [-1.0] * 5, [0.0] * 5])
    assert -1.0 <= lo < 0 < hi <= 1.0
    # Every resample mean lies between the smallest and largest difference.
    lo, hi = bootstrap_interval([[0.1, 0.2, 0.9], [0.4, 0.3, 0.2]])
    assert 0.1 <= lo <= hi <= 0.9
    assert bootstrap_interval([[0.1, 0.2]]) is None  # one seed


def test_summary_fields_on_constructed_results():
    sweep = Sweep(config=None, overrides=[], seeds=[0, 1, 2], reference="a", eval_every=0,
                  test_sets={"t": "x"}, variants={"a": [], "b": []})

    def run(values):
        rows = [{"image": f"i{k}", "psnr": v, "ssim": v / 100} for k, v in enumerate(values)]
        return {"scores": {"ema": {"t": rows}, "raw": {"t": rows}},
                "input": {"t": [{"image": "i0", "psnr": 20.0, "ssim": 0.5}, {"image": "i1", "psnr": 22.0, "ssim": 0.7}]}}

    results = {("a", 0): run([30, 32]), ("a", 1): run([31, 33]), ("a", 2): run([29, 31]),
               ("b", 0): run([31, 33]), ("b", 1): run([32, 34]), ("b", 2): run([32, 34])}
    s = summarize(results, sweep)
    a, b = s["table"]["a"]["t"]["ema"]["psnr"], s["table"]["b"]["t"]["ema"]["psnr"]
    assert a["per_seed"] == [31.0, 32.0, 30.0] and a["mean"] == pytest.approx(31.0) and a["sd"] == pytest.approx(1.0)
    d = b["diff"]
    assert d["per_seed"] == [1.0, 1.0, 3.0] and d["mean"] == pytest.approx(5 / 3)
    sd = math.sqrt(((1 - 5 / 3) ** 2 * 2 + (3 - 5 / 3) ** 2) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)
    assert d["ci95_t"] == pytest.approx((5 / 3 - half, 5 / 3 + half))
    assert d["verdict"] == "no clear difference"  # the t-interval reaches below 0
    lo, hi = d["ci95_bootstrap"]
    assert 1.0 <= lo <= hi <= 3.0
    assert s["input"]["t"] == {"psnr": 21.0, "ssim": pytest.approx(0.6)}
    md = summary_markdown(s, sweep)
    assert "| b | 3 | 32.67 +- 0.58 | +1.67 [" in md and "| noisy input | - | 21.00 |" in md


def test_a_second_sweep_in_the_same_folder_is_refused(tmp_path, dataset, real_env):
    from test_folder_lock import Holder

    from noiseda.experiments.sweep import SWEEP_LOCK

    out = tmp_path / "out"
    holder = Holder(out, SWEEP_LOCK)  # another real process holds the sweep folder
    try:
        with pytest.raises(NoisedaError, match=rf"in use by another noiseda process \(PID {holder.proc.pid}\); wait for that sweep"):
            run_sweep(load_sweep(_sweep_file(tmp_path, dataset)), out, progress=False)
    finally:
        holder.release()
    assert not (out / "runs").exists()  # nothing trained


class _Pool:
    """A stand-in for the process pool: ``results`` says how each submitted run ends (None: it
    keeps running); its worker processes are recorded stand-ins."""

    def __init__(self, results, started):
        self.results, self.started, self.cancelled = results, started, None
        self._processes = {}

    def __call__(self, *args, **kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, args):
        import concurrent.futures as cf

        variant, seed = args[2], args[3]
        self.started.append((variant, seed))
        future = cf.Future()
        outcome = self.results[len(self.started) - 1] if len(self.started) <= len(self.results) else None
        if outcome is not None:
            future.set_result((variant, seed, *outcome))
        self._processes[len(self.started)] = _Process()
        return future

    def shutdown(self, wait=True, cancel_futures=False):
        self.cancelled = cancel_futures


class _Process:
    terminated = 0

    def terminate(self):
        self.terminated += 1


def test_parallel_sweep_hands_out_one_run_per_free_job_so_ctrl_c_starts_nothing_new(tmp_path, dataset, real_env,
                                                                                    monkeypatch):
    """A run queued inside the process pool cannot be cancelled and would start after a
    Ctrl-C; so the sweep hands the pool a run only when a job is free."""
    import concurrent.futures as cf

    from noiseda.experiments.sweep import runner as sweep_module

    started, calls = [], {"wait": 0}
    pool = _Pool([(None, False)], started)  # the first run ends at once, the others keep running

    def wait(futures, return_when):
        calls["wait"] += 1
        if calls["wait"] == 2:  # Ctrl-C while two runs are going
            raise KeyboardInterrupt
        return {f for f in futures if f.done()}, {f for f in futures if not f.done()}

    monkeypatch.setattr(cf, "ProcessPoolExecutor", pool)
    monkeypatch.setattr(cf, "wait", wait)
    sweep = load_sweep(_sweep_file(tmp_path, dataset))
    todo = [(v, s) for s in sweep.seeds for v in sweep.variants]  # six runs
    with pytest.raises(KeyboardInterrupt):
        sweep_module._run_planned(sweep, tmp_path / "out", [], todo, 2, False, False)
    assert started == todo[:3]  # two at first, one more when the first finished, none after Ctrl-C
    assert pool.cancelled is True


def test_kill_of_a_parallel_sweep_stops_its_workers_with_a_checkpoint(tmp_path, dataset, real_env, monkeypatch):
    """`kill PID` (SIGTERM) reaches the sweep's own process only (and a sweep started in the
    background ignores SIGINT): it passes SIGTERM on to every worker, starts nothing new and
    restores its own handler."""
    import concurrent.futures as cf
    import os
    import signal

    from noiseda.experiments.sweep import runner as sweep_module

    started = []
    pool = _Pool([], started)  # every run keeps going
    calls = {"wait": 0}

    def wait(futures, return_when):
        calls["wait"] += 1
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises here, as inside a real wait
        return set(), set(futures)

    monkeypatch.setattr(cf, "ProcessPoolExecutor", pool)
    monkeypatch.setattr(cf, "wait", wait)
    before = signal.getsignal(signal.SIGTERM)
    sweep = load_sweep(_sweep_file(tmp_path, dataset))
    todo = [(v, s) for s in sweep.seeds for v in sweep.variants]
    with pytest.raises(KeyboardInterrupt):
        sweep_module._run_planned(sweep, tmp_path / "out", [], todo, 2, False, False)
    assert started == todo[:2] and pool.cancelled is True
    assert [p.terminated for p in pool._processes.values()] == [1, 1]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_worker_stopped_by_a_signal_stops_the_sweep(tmp_path, dataset, real_env, monkeypatch):
    """A run stopped on its own (its process got the signal) is not a failure to skip past:
    the sweep starts no other run and says to rerun the command."""
    import concurrent.futures as cf

    from noiseda.errors import TrainingInterrupted
    from noiseda.experiments.sweep import runner as sweep_module

    started = []
    pool = _Pool([("SIGTERM at step 5 of 6; checkpoint saved", True)], started)  # the second keeps running

    def wait(futures, return_when):  # the stopped run is seen first; the other one ends later
        done = {f for f in futures if f.done()}
        if not done:
            for f in futures:
                f.set_result(("vanilla", 0, None, False))
            done = set(futures)
        return done, set(futures) - done

    monkeypatch.setattr(cf, "ProcessPoolExecutor", pool)
    monkeypatch.setattr(cf, "wait", wait)
    sweep = load_sweep(_sweep_file(tmp_path, dataset))
    todo = [(v, s) for s in sweep.seeds for v in sweep.variants]
    with pytest.raises(TrainingInterrupted, match="sweep stopped: .* was stopped"):
        sweep_module._run_planned(sweep, tmp_path / "out", [], todo, 2, False, False)
    assert started == todo[:2]  # the second run finished; nothing started after the first stopped


def test_gap_closed_on_constructed_results():
    from noiseda.evaluation.stats import ratio_interval

    # b gains 1, 1, 3 dB over a; the oracle gains 2, 2, 6: b closes exactly half of the gap in every
    # seed, so the ratio is 0.5 and the interval has no width.
    r, ci = ratio_interval([1.0, 1.0, 3.0], [2.0, 2.0, 6.0])
    assert r == pytest.approx(0.5) and ci == pytest.approx((0.5, 0.5))
    # Residuals num - R * den = +0.5, -0.5, 0 around R = 1: t half-width over mean(den) = 1.
    r, ci = ratio_interval([1.5, 0.5, 1.0], [1.0, 1.0, 1.0])
    half = 4.302652729911275 * 0.5 / math.sqrt(3)
    assert r == pytest.approx(1.0) and ci == pytest.approx((1 - half, 1 + half))
    assert ratio_interval([1.0, 2.0], [-1.0, 0.5]) == (None, None)  # the oracle is no better: no gap

    sweep = Sweep(config=None, overrides=[], seeds=[0, 1, 2], reference="a", eval_every=0,
                  test_sets={"t": "x"}, variants={"a": [], "b": [], "o": []}, oracle="o")

    def run(v):
        rows = [{"image": "i0", "psnr": v, "ssim": 0.5}]
        return {"scores": {"ema": {"t": rows}, "raw": {"t": rows}}, "input": {"t": rows}}

    results = {}
    for s, (a, b, o) in enumerate([(30, 31, 32), (31, 32, 33), (29, 32, 35)]):
        results |= {("a", s): run(a), ("b", s): run(b), ("o", s): run(o)}
    summary = summarize(results, sweep)
    gap = summary["table"]["b"]["t"]["ema"]["psnr"]["gap_closed"]
    assert gap["mean"] == pytest.approx(0.5) and gap["gap"] == pytest.approx(10 / 3) and gap["seeds"] == [0, 1, 2]
    assert "gap_closed" not in summary["table"]["o"]["t"]["ema"]["psnr"]
    md = summary_markdown(summary, sweep)
    assert "t gap closed [95% CI]" in md and "| +0.50 [+0.50, +0.50] |" in md and "1 (oracle)" in md
    sweep.test_sets, sweep.oracle_test_sets = {"t": "x", "u": "y"}, ["t"]
    assert sweep.gap_sets() == ["t"]  # no column for a test set outside the oracle's domain


def test_the_oracle_must_be_a_variant(tmp_path, dataset, real_env):
    with pytest.raises(NoisedaError, match="oracle 'nope' must be a variant"):
        load_sweep(_sweep_file(tmp_path, dataset, oracle="nope"))
    with pytest.raises(NoisedaError, match="oracle 'vanilla' must be a variant other than the reference"):
        load_sweep(_sweep_file(tmp_path, dataset, oracle="vanilla"))
    assert load_sweep(_sweep_file(tmp_path, dataset, oracle="noise-da")).oracle == "noise-da"
    only = load_sweep(_sweep_file(tmp_path, dataset, oracle="noise-da", oracle_test_sets=["again"]))
    assert only.gap_sets() == ["again"]
    with pytest.raises(NoisedaError, match="'oracle_test_sets' must list test sets"):
        load_sweep(_sweep_file(tmp_path, dataset, oracle="noise-da", oracle_test_sets=["nope"]))
    with pytest.raises(NoisedaError, match="'oracle_test_sets' needs an 'oracle'"):
        load_sweep(_sweep_file(tmp_path, dataset, oracle_test_sets=["val"]))


def test_a_stopped_sweep_says_how_to_continue(tmp_path, dataset, real_env, monkeypatch, capsys):
    from noiseda.cli import main
    from noiseda.experiments import sweep as sweep_package

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_package, "run_sweep", stopped)
    assert main(["sweep", str(_sweep_file(tmp_path, dataset)), "--out", str(tmp_path / "out"), "--jobs", "2"]) == 130
    assert "run the same command again to continue" in capsys.readouterr().err
