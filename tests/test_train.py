"""Training end to end on tiny generated images: train -> evaluate -> restore, resume, export."""

import json

import pytest
import torch
from safetensors.torch import load_file

from noiseda.methods import METHODS, register_method
from noiseda.methods.vanilla import Vanilla
from noiseda.cli import main
from noiseda.data.store import decoded_cache_dir
from noiseda.errors import NoisedaError
from noiseda.nets import build_net
from noiseda.training.loop import train

from conftest import TINY, data_overrides, tiny_config


def _weights(path):
    return load_file(str(path))


@pytest.mark.parametrize("method", ["vanilla", "noise-da", "noise-da-ex"])
def test_train_evaluate_restore_end_to_end(dataset, tmp_path, method, capsys):
    run = tmp_path / f"run-{method}"
    args = ["train", "--out", str(run), "--no-progress"]
    for s in TINY + data_overrides(dataset) + [f"method.name={method}"]:
        args += ["--set", s]
    assert main(args) == 0
    for name in ("config.yaml", "metrics.jsonl", "final/restorer.safetensors", "final/net.json", "best/net.json"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val/psnr" in r for r in logs) and any("loss/total" in r for r in logs)
    spec = json.loads((run / "final" / "net.json").read_text())
    assert spec["net"] == "unet" and spec["value_range"] == [0.0, 1.0] and spec["method"] == method

    ev = tmp_path / "eval"
    assert main(["evaluate", "--weights", str(run), "--pairs", str(dataset["val"]), "--out", str(ev)]) == 0
    summary = json.loads((ev / "summary.json").read_text())["results"]["val"]
    assert summary["images"] == 2 and 0 < summary["psnr"] < 100 and 0 < summary["ssim"] <= 1
    assert (ev / "val.csv").read_text().count("\n") == 3

    out = tmp_path / "restored"
    assert main(["restore", "--weights", str(run / "final"), "--input", str(dataset["real"]),
                 "--output", str(out), "--no-progress", "--tile", "16"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img0.jpg", "img1.jpg", "img2.jpg"]


def test_exported_weights_hold_no_diffusion_parameters(dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(dataset), run, progress=False)
    exported = _weights(run / "final" / "restorer.safetensors")
    full = _weights(sorted((run / "checkpoints").iterdir())[-1] / "model.safetensors")
    assert any(k.startswith("diffusion.") for k in full)  # the checkpoint has it, for resuming
    assert set(exported) == {k.removeprefix("restorer.") for k in full if k.startswith("restorer.")}


@pytest.mark.parametrize("degrade_on", ["loader", "device"])
def test_resume_equals_not_stopping(dataset, tmp_path, degrade_on):
    cfg = tiny_config(dataset, "train.checkpoint_every=2", "train.steps=6", f"data.degrade_on={degrade_on}")
    train(cfg, tmp_path / "straight", progress=False)
    train(tiny_config(dataset, "train.checkpoint_every=2", "train.steps=4", f"data.degrade_on={degrade_on}"),
          tmp_path / "stopped", progress=False)
    train(cfg, tmp_path / "stopped", resume=True, progress=False)
    for part in ("checkpoints/step-00000006/model.safetensors", "checkpoints/step-00000006/ema.safetensors",
                 "final/restorer.safetensors"):
        a, b = _weights(tmp_path / "straight" / part), _weights(tmp_path / "stopped" / part)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), part
    opt_a = torch.load(tmp_path / "straight/checkpoints/step-00000006/optimizer.pt", weights_only=True)
    opt_b = torch.load(tmp_path / "stopped/checkpoints/step-00000006/optimizer.pt", weights_only=True)
    assert all(torch.equal(opt_a["state"][i]["exp_avg_sq"], opt_b["state"][i]["exp_avg_sq"]) for i in opt_a["state"])


def test_keeps_last_k_checkpoints(dataset, tmp_path):
    train(tiny_config(dataset, "train.checkpoint_every=1", "train.keep_checkpoints=2"), tmp_path / "r", progress=False)
    names = sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir())
    assert names == ["step-00000005", "step-00000006"]


def test_refuses_to_overwrite_a_run_without_resume(dataset, tmp_path):
    train(tiny_config(dataset), tmp_path / "r", progress=False)
    with pytest.raises(NoisedaError, match="--resume"):
        train(tiny_config(dataset), tmp_path / "r", progress=False)


class _NaNAfter(Vanilla):
    """Finite for two steps, then NaN: exercises the non-finite guard."""

    calls = 0

    def forward(self, batch, lam):
        out = super().forward(batch, lam)
        type(self).calls += 1
        if type(self).calls > 2:
            out["total"] = out["total"] * float("nan")
        return out


if "test-nan" not in METHODS:
    register_method("test-nan")(_NaNAfter)


@pytest.mark.parametrize("log_every, stop_step", [(1, 5), (4, 8)])
def test_nonfinite_steps_are_skipped_then_training_stops_with_a_checkpoint(dataset, tmp_path, log_every, stop_step):
    # The check runs on the device every step but is read at log steps: with steps 3.. all NaN,
    # the run stops at the first log step with 3 or more in a row.
    _NaNAfter.calls = 0
    cfg = tiny_config(dataset, "method.name=test-nan", "train.max_nonfinite=3", "train.steps=20",
                      f"train.log_every={log_every}")
    with pytest.raises(NoisedaError, match="non-finite"):
        train(cfg, tmp_path / "r", progress=False)
    ckpts = sorted((tmp_path / "r" / "checkpoints").iterdir())
    assert ckpts[-1].name == f"step-{stop_step:08d}"
    state = json.loads((ckpts[-1] / "state.json").read_text())
    assert state["nonfinite_total"] == stop_step - 2 and state["ema_updates"] == 2
    model = load_file(ckpts[-1] / "model.safetensors")
    assert all(v.isfinite().all() for v in model.values())  # skipped steps left the weights alone
    logs = (tmp_path / "r" / "metrics.jsonl").read_text()
    assert "train/nonfinite_skipped" in logs


@pytest.mark.parametrize("method", ["noise-da", "c2n"])  # c2n: each stage leaves some nets without gradient
def test_two_process_data_parallel_on_cpu(dataset, tmp_path, method):
    """`accelerate launch --multi_gpu --num_processes 2` gives real DDP (gloo) on a CPU machine."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "noiseda", "train", "--out", str(tmp_path / "ddp"), "--no-progress"]
    extra = ["method.options.c2n.width=8"] if method == "c2n" else []
    for s in TINY + data_overrides(dataset) + ["data.cache=disk", f"method.name={method}", *extra]:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("done: 6 steps") == 1  # only the main process reports
    first = json.loads((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["info/world_size"] == 2
    assert (tmp_path / "ddp" / "final" / "restorer.safetensors").is_file()
    # both ranks read the decoded images that one of them wrote: 3 clean + 3 real
    assert len(list(decoded_cache_dir().glob("*.npy"))) == 6


@pytest.mark.parametrize("slow_validation", [False, True])
def test_a_loader_bound_run_logs_its_wait_and_says_what_to_do(dataset, tmp_path, monkeypatch, capsys, slow_validation):
    import time

    from noiseda.training import loop as train_module
    from noiseda.data.samples import TrainSamples

    slow = TrainSamples.__getitem__
    monkeypatch.setattr(TrainSamples, "__getitem__", lambda self, i: (time.sleep(0.05), slow(self, i))[1])
    if slow_validation:  # validation time is not training time: it must not dilute the fraction
        validate = train_module.restore_and_score
        monkeypatch.setattr(train_module, "restore_and_score", lambda *a: (time.sleep(2.0), validate(*a))[1])
    train(tiny_config(dataset, "train.val_every=2" if slow_validation else "train.val_every=100"),
          tmp_path / "run", progress=False)
    logs = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    waits = [r["train/data_wait"] for r in logs if "train/data_wait" in r]
    assert len(waits) == 3 and all(0.3 < w <= 1.0 for w in waits)
    err = capsys.readouterr()
    assert (err.out + err.err).count("of the time went to waiting for training data") == 1


@pytest.mark.parametrize("task, degradation", [("derain", "rain-streaks"), ("deblur", "shake-blur+awgn@0.5")])
def test_signed_range_tasks_train_and_export_their_range(dataset, tmp_path, task, degradation):
    cfg = tiny_config(dataset, f"task={task}", "data.value_range=[-1,1]", f"data.degradation={degradation}")
    summary = train(cfg, tmp_path / "r", progress=False)
    spec = json.loads((tmp_path / "r" / "final" / "net.json").read_text())
    assert spec["value_range"] == [-1.0, 1.0] and spec["task"] == task
    assert 0 < summary["best"]["val/psnr"] < 100


def test_degrading_on_the_device_is_deterministic_and_differs_from_the_loader(dataset, tmp_path):
    def final_weights(name, *extra):
        train(tiny_config(dataset, "train.steps=3", *extra), tmp_path / name, progress=False)
        return load_file(tmp_path / name / "final" / "restorer.safetensors")

    a = final_weights("a", "data.degrade_on=device")
    b = final_weights("b", "data.degrade_on=device")
    loader = final_weights("c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], loader[k]) for k in a)


def test_degrading_on_the_device_needs_clean_images(dataset):
    with pytest.raises(NoisedaError, match="degrade_on=device"):
        tiny_config(dataset, "data.degrade_on=device", "data.clean=[]", f"data.pairs={dataset['val']}")


def test_run_report_has_scores_curves_and_samples(dataset, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run = tmp_path / "r"
    train(tiny_config(dataset), run, progress=False)
    report = (run / "report.md").read_text()
    assert "| best |" in report and "report/curves.png" in report and "report/samples.png" in report
    assert (run / "report" / "curves.png").is_file() and (run / "report" / "samples.png").is_file()
    (run / "report.md").unlink()
    assert main(["report", str(run)]) == 0 and (run / "report.md").is_file()
    assert main(["report", str(tmp_path)]) == 2 and "not a run folder" in capsys.readouterr().err


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(dataset, tmp_path, monkeypatch):
    import errno

    import noiseda.training.checkpoint as ckpt

    real_save, calls = ckpt.torch.save, []

    def save_then_fill_the_disk(obj, path, *a, **k):
        calls.append(path)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", save_then_fill_the_disk)
    run = tmp_path / "r"
    with pytest.raises(NoisedaError, match="could not write checkpoint .*No space left on device"):
        train(tiny_config(dataset, "train.checkpoint_every=2", "train.steps=6"), run, progress=False)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step-00000002"]  # no half-written folder, the previous checkpoint kept
    assert ckpt.load_checkpoint(run / "checkpoints" / "step-00000002")["state"]["step"] == 2


def test_restore_compile_flag_compiles_the_net_and_changes_no_pixel(dataset, tmp_path, monkeypatch):
    from noiseda.data.io import read_image

    train(tiny_config(dataset, "method.name=vanilla"), tmp_path / "run", progress=False)
    compiled = []
    real_compile = torch.compile

    def spy(module, **kwargs):  # dynamo's tracing, without minutes of CPU code generation
        compiled.append(module)
        return real_compile(module, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    outs = {}
    for flag in ([], ["--compile"]):
        out = tmp_path / f"out{len(flag)}"
        assert main(["restore", "--weights", str(tmp_path / "run"), "--input", str(dataset["real"]),
                     "--output", str(out), "--no-progress", "--format", "png"] + flag) == 0
        outs[len(flag)] = {p.name: read_image(p).pixels for p in sorted(out.iterdir())}
    assert len(compiled) == 1 and len(outs[1]) == 3
    assert all((outs[0][k] == outs[1][k]).all() for k in outs[0])


def test_training_with_compile_traces_both_nets_and_trains_as_eager(dataset, tmp_path, monkeypatch):
    """train.compile=true end to end (dynamo traces the restorer and the diffusion net, probe and
    validation included); compiled with the eager backend it must give the same weights."""
    compiled = []
    real_compile = torch.compile

    def spy(model, **kwargs):  # dynamo's tracing, without minutes of CPU code generation
        compiled.append(model)
        return real_compile(model, backend="eager", **kwargs)

    train(tiny_config(dataset), tmp_path / "eager", progress=False)
    monkeypatch.setattr(torch, "compile", spy)
    train(tiny_config(dataset, "train.compile=true"), tmp_path / "compiled", progress=False)
    assert len(compiled) == 2
    a = _weights(tmp_path / "eager" / "final" / "restorer.safetensors")
    b = _weights(tmp_path / "compiled" / "final" / "restorer.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)


def test_bf16_training_on_cpu_after_fp32_in_the_same_process(dataset, tmp_path):
    """train.mixed_precision=bf16 on a CPU (1.5-2.6x faster than fp32 where the CPU has bf16
    arithmetic) right after an fp32 run, which Accelerate alone refuses: same data and init,
    losses close but not equal, fp32 weights out."""
    train(tiny_config(dataset), tmp_path / "fp32", progress=False)
    train(tiny_config(dataset, "train.mixed_precision=bf16"), tmp_path / "bf16", progress=False)

    def first_loss(run):
        logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return next(r["loss/total"] for r in logs if "loss/total" in r)

    a, b = first_loss(tmp_path / "fp32"), first_loss(tmp_path / "bf16")
    assert a != b and abs(a - b) < 0.05 * abs(a)
    weights = _weights(tmp_path / "bf16" / "final" / "restorer.safetensors")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())


def test_restore_progress_names_the_precision_and_bf16_stays_close_to_fp32(dataset, tmp_path, capsys):
    from noiseda.data.io import read_image

    train(tiny_config(dataset, "method.name=vanilla"), tmp_path / "run", progress=False)
    capsys.readouterr()
    outs = {}
    for precision, shown in (("no", "fp32"), ("bf16", "bf16")):
        out = tmp_path / precision
        assert main(["restore", "--weights", str(tmp_path / "run"), "--input", str(dataset["real"]),
                     "--output", str(out), "--format", "png", "--precision", precision]) == 0
        assert f"restore ({shown})" in capsys.readouterr().err
        outs[precision] = [read_image(p).pixels for p in sorted(out.iterdir())]  # floats in [0, 1]
    assert len(outs["no"]) == 3
    assert all(abs(a - b).max() <= 8 / 255 for a, b in zip(outs["no"], outs["bf16"]))


def test_an_image_that_fails_in_a_loader_worker_is_a_one_line_error(dataset, tmp_path, capsys):
    """With data.cache=none images are first decoded in the loader workers, where torch wraps
    the error in a multi-line report; the CLI still says it in one line."""
    broken = sorted(dataset["clean"].iterdir())[-1]
    broken.write_bytes(broken.read_bytes()[:200])  # truncated
    args = ["train", "--out", str(tmp_path / "run"), "--no-progress"]
    for s in TINY + data_overrides(dataset) + ["data.cache=none", "data.workers=2"]:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("noiseda: error: cannot read image") and broken.name in err and "\n" not in err


def test_diffusion_learning_rate_is_its_own_parameter_group(dataset, tmp_path):
    cfg = tiny_config(dataset, "train.lr=0.001", "train.diffusion_lr=0.0002", "train.steps=3")
    train(cfg, tmp_path / "run", progress=False)
    opt = torch.load(tmp_path / "run/checkpoints/step-00000003/optimizer.pt", weights_only=True)
    groups = opt["param_groups"]
    assert [g["lr"] for g in groups] == [0.001, 0.0002]
    n_restorer = sum(1 for _ in build_net("unet", width=4).parameters())
    assert len(groups[0]["params"]) == n_restorer and len(groups[1]["params"]) > 0
    train(tiny_config(dataset, "train.lr=0.001", "train.diffusion_lr=0.0002", "train.steps=6"),
          tmp_path / "run", resume=True, progress=False)  # the two groups resume
