"""`noiseda demo` end to end, shortened to two steps per method."""

import json
from pathlib import Path

from noiseda.cli import main


def test_demo_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| input |" in printed and "| vanilla |" in printed and "| noise-da |" in printed
    assert "noise-da - vanilla:" in printed and "Does it work?" in printed
    for name in ("side_by_side.png", "report.md", "results.json"):
        assert (out / name).is_file()
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert set(summary) == {"input", "vanilla", "noise-da"}
    assert 15 < summary["input"]["psnr"] < 40  # the simulated camera noise is real noise, not nothing
    assert f"--weights {out / 'runs' / 'noise-da' / 'final'}" in printed  # what to do next
    # a second call reuses the data and the finished runs
    assert main(["demo", "--out", str(out), "--steps", "2", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--steps", "1", "--no-progress"]) == 2  # never "resuming from 2 of 1"
    assert f"{out} holds a demo trained for 2 steps; --steps 1 needs another --out" in capsys.readouterr().err
    # the runs' configs name their data absolutely: `train --resume` works from any folder
    import yaml

    data = yaml.safe_load((out / "runs" / "noise-da" / "config.yaml").read_text())["data"]
    assert all(Path(p).is_absolute() for p in data["clean"] + data["real"])
