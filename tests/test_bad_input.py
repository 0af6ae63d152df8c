"""Every bad input gives one line on stderr naming the problem, exit code 2, and writes nothing."""


from noiseda.cli import main

from conftest import TINY, write_images


def _train(tmp_path, *sets):
    args = ["train", "--out", str(tmp_path / "run"), "--no-progress"]
    for s in TINY + list(sets):
        args += ["--set", s]
    return args


def _check(capsys, argv, message, tmp_path=None):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("noiseda: error:"), err
    assert message in err, err
    assert "Traceback" not in err
    if tmp_path is not None:
        assert not (tmp_path / "run").exists()


def test_missing_folder(tmp_path, capsys):
    write_images(tmp_path / "real", 1)
    _check(capsys, _train(tmp_path, f"data.clean={tmp_path / 'nope'}", f"data.real={tmp_path / 'real'}"),
           "no such file or folder", tmp_path)


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    write_images(tmp_path / "clean", 2)
    _check(capsys, _train(tmp_path, f"data.clean={tmp_path / 'clean'}", f"data.real={tmp_path / 'empty'}"),
           "no images in folder", tmp_path)


def test_truncated_image(tmp_path, capsys):
    files = write_images(tmp_path / "clean", 2, size=(64, 64))
    files[1].write_bytes(files[1].read_bytes()[:200])
    write_images(tmp_path / "real", 2)
    _check(capsys, _train(tmp_path, f"data.clean={tmp_path / 'clean'}", f"data.real={tmp_path / 'real'}"),
           f"cannot read image {files[1]}", tmp_path)


def test_not_an_image(tmp_path, capsys):
    write_images(tmp_path / "clean", 1)
    (tmp_path / "clean" / "junk.png").write_text("hello")
    write_images(tmp_path / "real", 1)
    _check(capsys, _train(tmp_path, f"data.clean={tmp_path / 'clean'}", f"data.real={tmp_path / 'real'}"),
           "junk.png", tmp_path)


def test_unknown_config_key(tmp_path, capsys):
    _check(capsys, _train(tmp_path, "train.bacth_size=3"), "did you mean 'batch_size'", tmp_path)


def test_wrong_config_type(tmp_path, capsys):
    _check(capsys, _train(tmp_path, "train.batch_size=[1]"), "train.batch_size: expected int", tmp_path)


def test_bad_yaml_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {steps: [1,\n")
    _check(capsys, ["train", "-c", str(cfg), "--out", str(tmp_path / "run")], "invalid YAML", tmp_path)


def test_unknown_method_and_net(tmp_path, capsys):
    _check(capsys, _train(tmp_path, "method.name=noise-dda"), "did you mean 'noise-da'", tmp_path)
    _check(capsys, _train(tmp_path, "net.name=unet-x"), "unknown restoration net", tmp_path)
    _check(capsys, _train(tmp_path, "net.name=restormer", "net.options.heads=[3,3,3,3]"),
           "channels do not split into 3 heads", tmp_path)


def test_mismatched_pairs(tmp_path, capsys):
    write_images(tmp_path / "p" / "noisy", 3)
    write_images(tmp_path / "p" / "clean", 2)
    write_images(tmp_path / "real", 1)
    _check(capsys, _train(tmp_path, f"data.pairs_input={tmp_path / 'p/noisy'}",
                          f"data.pairs_target={tmp_path / 'p/clean'}", f"data.real={tmp_path / 'real'}"),
           "1 image(s) have no target: img2", tmp_path)


def test_evaluate_on_mismatched_pairs(tmp_path, capsys):
    write_images(tmp_path / "p" / "noisy", 2)
    write_images(tmp_path / "p" / "clean", 3)
    _check(capsys, ["evaluate", "--weights", str(tmp_path), "--pairs", str(tmp_path / "p")], "have no input")


def test_evaluate_missing_weights(tmp_path, capsys):
    write_images(tmp_path / "p" / "noisy", 1)
    write_images(tmp_path / "p" / "clean", 1)
    _check(capsys, ["evaluate", "--weights", str(tmp_path / "w"), "--pairs", str(tmp_path / "p")], "weights not found")


def test_restore_refuses_to_overwrite_inputs(tmp_path, capsys):
    write_images(tmp_path / "imgs", 2)
    before = {p: p.read_bytes() for p in (tmp_path / "imgs").iterdir()}
    _check(capsys, ["restore", "--weights", str(tmp_path), "--input", str(tmp_path / "imgs"),
                    "--output", str(tmp_path / "imgs")], "would overwrite an input")
    assert {p: p.read_bytes() for p in (tmp_path / "imgs").iterdir()} == before


def test_restore_reports_a_corrupt_file_and_goes_on(dataset, tmp_path, capsys):
    from noiseda.training.loop import train

    from conftest import tiny_config

    train(tiny_config(dataset, "method.name=vanilla"), tmp_path / "r", progress=False)
    imgs = write_images(tmp_path / "in", 3)
    imgs[1].write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rc = main(["restore", "--weights", str(tmp_path / "r"), "--input", str(tmp_path / "in"),
               "--output", str(tmp_path / "out"), "--no-progress"])
    assert rc == 1
    assert "img1.png" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img2.png"]


def test_resume_without_checkpoint(dataset, tmp_path, capsys):
    from conftest import data_overrides

    _check(capsys, _train(tmp_path, *data_overrides(dataset)) + ["--resume", "-c", "tiny-cpu"],
           "no complete checkpoint", tmp_path)


def test_run_folder_inside_a_data_folder_is_refused(dataset, tmp_path, capsys):
    from conftest import data_overrides

    args = ["train", "--out", str(dataset["clean"] / "run"), "--no-progress"]
    for s in TINY + data_overrides(dataset):
        args += ["--set", s]
    _check(capsys, args, "overlaps the data folder")
    assert not (dataset["clean"] / "run").exists()


def test_paired_folder_trains(tmp_path):
    from noiseda.config import load_config
    from noiseda.training.loop import train

    write_images(tmp_path / "p" / "noisy", 2, noise=0.1)
    write_images(tmp_path / "p" / "clean", 2)
    cfg = load_config(None, TINY + [f"data.pairs={tmp_path / 'p'}", "method.name=vanilla"])
    assert train(cfg, tmp_path / "run", progress=False)["steps"] == 6


def test_pairs_of_different_sizes(tmp_path, capsys):
    write_images(tmp_path / "p" / "noisy", 2, size=(24, 28))
    write_images(tmp_path / "p" / "clean", 2, size=(24, 30))
    write_images(tmp_path / "real", 1)
    _check(capsys, _train(tmp_path, f"data.pairs={tmp_path / 'p'}", f"data.real={tmp_path / 'real'}"),
           "size mismatch", tmp_path)


# The corpus: more configs and arguments, each a one-line error with nothing written.
CONFIG_CASES = [
    ("train.steps=0", "train.steps: expected >= 1"),
    ("data.patch_size=30", "expected a multiple of 8"),
    ("train.mixed_precision=fp8", "expected auto|no|bf16|fp16"),
    ("data.degrade_on=gpu", "expected loader|device"),
    ("method.options.noise-da.t_range=[5,2000]", "method.options.noise-da.t_range: expected [lo, hi]"),
    ("data.degradation=rain-streak", "did you mean"),
    ("data.degradation=awgn@2", "not in [0, 1]"),
    ("train.lr=-1", "train.lr: expected > 0"),
    ("train.ema_decay=1.5", "expected 0 <= decay < 1"),
    ("method.options.noise-da.condition=both-ways", "expected both|synthetic|real"),
    ("data.value_range=[1,0]", "data.value_range: expected [low, high]"),
    ("net.options.depth_of_field=3", "unexpected keyword argument 'depth_of_field'"),
    ("net.options=[3]", "net.options: expected dict"),
    ("net.options.width=8", "net.options.width: set it as net.width instead"),
]


def test_bad_config_values(tmp_path, capsys):
    write_images(tmp_path / "clean", 2)
    write_images(tmp_path / "real", 2)
    data = [f"data.clean={tmp_path / 'clean'}", f"data.real={tmp_path / 'real'}"]
    for setting, message in CONFIG_CASES:
        _check(capsys, _train(tmp_path, *data, setting), message, tmp_path)


def test_bad_arguments(tmp_path, capsys):
    write_images(tmp_path / "in", 1)
    cases = [
        (["train", "--out", str(tmp_path / "run"), "--set", "train.steps"], "--set expects key=value"),
        (["train", "-c", "nosuchconfig", "--out", str(tmp_path / "run")], "config file not found"),
        (["evaluate", "--compare", "a=x", "b=y", "--pairs", "p"], "--compare needs --out"),
        (["evaluate", "--weights", "w", "--pairs", "p", "--baseline", "a"], "go with --compare"),
        (["evaluate", "--weights", "w", "--pairs", "p", "--lpips-weights", str(tmp_path / "no.ckpt")],
         "LPIPS weights not found"),
        (["import-official", str(tmp_path / "no.pth"), "--task", "denoise", "--out", str(tmp_path / "run")],
         "checkpoint not found"),
        (["import-official", str(tmp_path / "no.pth"), "--task", "paint", "--out", str(tmp_path / "run")],
         "expected one of denoise, derain, deblur"),
        (["restore", "--weights", str(tmp_path / "w"), "--input", str(tmp_path / "in"), "--output",
          str(tmp_path / "run")], "weights not found"),
    ]
    for argv, message in cases:
        _check(capsys, argv, message, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written anywhere


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _restorer(folder):
    from noiseda.inference.export import export_restorer
    from noiseda.nets import build_net

    spec = {"format": "noiseda-restorer/1", "net": "unet", "kwargs": {"width": 4}, "value_range": [0.0, 1.0],
            "task": "denoise"}
    return export_restorer(folder, build_net("unet", width=4).state_dict(), spec)


def test_first_hour_mistakes(tmp_path, capsys, monkeypatch):
    """What a newcomer typed wrong in their first hour: each gets one line and exit 2, writes nothing."""
    import torch

    weights = _restorer(tmp_path / "model")
    write_images(tmp_path / "in", 1)
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    not_a_checkpoint = tmp_path / "notes.pth"
    not_a_checkpoint.write_text("hello world\n")
    restore = ["restore", "--weights", str(weights), "--input", str(tmp_path / "in"), "--no-progress"]
    cases = [
        (["demo", "--out", str(a_file)], "is a file"),
        (["demo", "--out", str(tmp_path / "demo"), "--steps", "-1"], "--steps: expected >= 1"),
        (["train", "-c", "tiny-cpu", "--out", str(a_file)], "is a file"),
        (restore + ["--output", str(tmp_path / "out"), "--device", "foo"], "--device: unknown device 'foo'"),
        (restore + ["--output", str(tmp_path / "out"), "--device", "cuda:99"], "--device cuda:99"),
        (restore + ["--output", str(a_file / "sub")], "is a file, not a folder"),
        (restore + ["--output", "/proc/noiseda-test/x"], "--output /proc/noiseda-test/x"),
        (["nets", "--size", "0"], "--size: expected image sizes of at least 1 pixel"),
        (["nets", "--size", "128", "-8"], "--size: expected image sizes of at least 1 pixel"),
        (["config", "--set", "method.name=noise-daa"], "did you mean 'noise-da'"),
        (["config", "--set", "net.name=unet-x"], "config net.name: unknown restoration net 'unet-x'"),
        (["import-official", str(not_a_checkpoint), "--task", "denoise", "--out", str(tmp_path / "imported")],
         "not a readable PyTorch file (corrupt, truncated or another format)"),
        (["train", "-c", "tiny-cpu", "--out", str(tmp_path / "empty-run"), "--resume", "--set",
          f"data.clean={tmp_path / 'no-data'}"], "no complete checkpoint"),  # before looking at any data
    ]
    if not torch.cuda.is_available():
        cases.append((restore + ["--output", str(tmp_path / "out"), "--device", "cuda"], "no CUDA GPU"))
    before = _tree(tmp_path)
    for argv, message in cases:
        _check(capsys, argv, message)
        assert _tree(tmp_path) == before, argv
    monkeypatch.setenv("NOISEDA_MAX_PIXELS", "abc")
    _check(capsys, restore + ["--output", str(tmp_path / "out")], "NOISEDA_MAX_PIXELS: expected a positive")
    assert _tree(tmp_path) == before


def test_weights_that_do_not_fit_their_net_json_say_which_keys(tmp_path, capsys):
    import json

    weights = _restorer(tmp_path / "model")
    spec = json.loads((weights / "net.json").read_text())
    (weights / "net.json").write_text(json.dumps({**spec, "kwargs": {"width": 8}}))
    write_images(tmp_path / "in", 1)
    _check(capsys, ["restore", "--weights", str(weights), "--input", str(tmp_path / "in"), "--output",
                    str(tmp_path / "out")], "of another shape (e.g. ")


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from noiseda.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, p in sub.choices.items()
               for a in p._actions if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing
    assert all(c.help for c in sub._choices_actions)  # and every command has a line in `noiseda -h`
