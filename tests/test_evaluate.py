"""noiseda evaluate: LPIPS column, saved images, and --compare (table, figure, contact sheet, gap closed)."""

import json
import sys

import pytest

from noiseda.cli import main
from noiseda.evaluation.lpips import find_weights
from noiseda.training.loop import train

from conftest import tiny_config, write_images


@pytest.fixture
def runs_and_pairs(dataset, tmp_path):
    """Three tiny trained runs and a test set large enough for LPIPS (>= 32 px)."""
    pairs = tmp_path / "test"
    write_images(pairs / "clean", 3, size=(40, 48), seed=5)
    write_images(pairs / "noisy", 3, size=(40, 48), seed=5, noise=0.08)
    runs = {}
    for name, method, steps in (("vanilla", "vanilla", 3), ("nda", "noise-da", 3), ("oracle", "vanilla", 6)):
        runs[name] = tmp_path / name
        train(tiny_config(dataset, f"method.name={method}", f"train.steps={steps}"), runs[name], progress=False)
    return runs, pairs


def test_compare_writes_table_figure_sheet_and_gap_closed(runs_and_pairs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    runs, pairs = runs_and_pairs
    out = tmp_path / "cmp"
    args = ["evaluate", "--compare", *(f"{k}={v}" for k, v in runs.items()), "--oracle", "oracle",
            "--pairs", str(pairs), "--out", str(out)]
    assert main(args) == 0
    for f in ("compare.md", "compare.json", "compare.png", "compare-sheet.png", "vanilla/summary.json",
              "nda/test.csv"):
        assert (out / f).is_file(), f
    table = (out / "compare.md").read_text().splitlines()
    assert [row.split("|")[1].strip() for row in table[2:]] == ["input", "vanilla", "nda", "oracle"]
    report = json.loads((out / "compare.json").read_text())
    gaps = report["gap_closed_psnr"]
    assert gaps["vanilla"]["test"] == 0.0 and gaps["oracle"]["test"] == pytest.approx(1.0)
    assert ("LPIPS" in table[0]) == (find_weights() is not None)
    assert "compare.md" in capsys.readouterr().out


def test_compare_without_matplotlib_still_writes_the_table(runs_and_pairs, tmp_path, monkeypatch):
    runs, pairs = runs_and_pairs
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    out = tmp_path / "cmp"
    assert main(["evaluate", "--compare", f"a={runs['vanilla']}", f"b={runs['nda']}", "--no-lpips",
                 "--pairs", str(pairs), "--out", str(out)]) == 0
    assert (out / "compare.md").is_file() and not (out / "compare.png").exists()


def test_save_images_and_lpips_column(runs_and_pairs, tmp_path):
    runs, pairs = runs_and_pairs
    saved = tmp_path / "restored"
    assert main(["evaluate", "--weights", str(runs["vanilla"]), "--pairs", str(pairs), "--out", str(tmp_path / "e"),
                 "--save-images", str(saved)]) == 0
    assert sorted(p.name for p in (saved / "test").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert ("lpips" in summary["results"]["test"]) == (find_weights() is not None)


@pytest.mark.parametrize("extra, message", [
    (["--oracle", "nobody"], "not among the compared names"),
    (["--compare", "a=x", "a=y"], "duplicate"),
])
def test_compare_rejects_bad_names(tmp_path, capsys, extra, message):
    args = ["evaluate", "--pairs", str(tmp_path), "--out", str(tmp_path / "o")]
    args += extra if extra[0] == "--compare" else ["--compare", "a=x", "b=y", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_save_images_never_overwrites_the_test_images(runs_and_pairs, tmp_path, capsys):
    runs, pairs = runs_and_pairs
    before = {p: p.read_bytes() for p in (pairs / "noisy").iterdir()}
    # restored images of set "test" would go to <dir>/test/<name>: point <dir> so that this is noisy/
    (tmp_path / "alias").mkdir()
    (tmp_path / "alias" / "test").symlink_to(pairs / "noisy")
    assert main(["evaluate", "--weights", str(runs["vanilla"]), "--pairs", str(pairs), "--no-lpips",
                 "--save-images", str(tmp_path / "alias")]) == 2
    assert "would overwrite the test image" in capsys.readouterr().err
    assert all(p.read_bytes() == data for p, data in before.items())
