"""Simulated-real splits, and each paper task config training on one (tiny overrides)."""

import json

import pytest

from noiseda.cli import main

from conftest import TINY, write_images


@pytest.mark.parametrize("task", ["denoise", "derain", "deblur"])
def test_task_config_trains_on_a_simulated_split(tmp_path, task, capsys):
    write_images(tmp_path / "clean", 6, size=(32, 36))
    split = tmp_path / "split"
    assert main(["simulate", "--task", task, "--clean", str(tmp_path / "clean"), "--out", str(split)]) == 0
    info = json.loads((split / "split.json").read_text())
    groups = [set(info[g]) for g in ("train", "real", "test")]
    assert all(groups) and not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    args = ["train", "-c", task, "--out", str(tmp_path / "run"), "--no-progress"]
    for s in TINY + ["data.pairs=null", f"data.clean={split / 'train-clean'}", f"data.real={split / 'real'}",
                     f"data.val_pairs={split / 'test'}", "data.cache=memory", "data.workers=0",
                     f"data.degradation={info['synthetic']}"]:
        args += ["--set", s]
    assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / "run" / "best" / "net.json").is_file()


def test_split_refuses_a_non_empty_folder_and_too_few_images(tmp_path, capsys):
    write_images(tmp_path / "clean", 2)
    assert main(["simulate", "--task", "derain", "--clean", str(tmp_path / "clean"), "--out", str(tmp_path / "s")]) == 2
    assert "at least 3 images" in capsys.readouterr().err
    write_images(tmp_path / "clean", 3)
    assert main(["simulate", "--task", "derain", "--clean", str(tmp_path / "clean"), "--out", str(tmp_path / "clean")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_a_split_can_take_another_real_degradation(tmp_path):
    """--real-degradation awgn --sigma-range 25 25: a noisy-only set for self-supervised methods."""
    import numpy as np
    from PIL import Image

    write_images(tmp_path / "clean", 8, size=(64, 64))
    split = tmp_path / "split"
    assert main(["simulate", "--task", "denoise", "--clean", str(tmp_path / "clean"), "--out", str(split),
                 "--real-degradation", "awgn", "--sigma-range", "25", "25"]) == 0
    info = json.loads((split / "split.json").read_text())
    assert info["real_like"] == "awgn" and info["sigma_range"] == [25.0, 25.0]
    noisy, clean = (np.asarray(Image.open(next((split / "test" / d).iterdir())), dtype=np.float64) / 255
                    for d in ("input", "target"))
    assert 0.08 < (noisy - clean).std() < 0.11  # 25/255 = 0.098, a little less where clipped at 0 and 1
