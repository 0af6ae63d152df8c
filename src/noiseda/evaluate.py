"""Scoring a restorer on paired real test folders: per-image CSV, summary JSON, a table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional, Sequence

import torch

from noiseda.checkpoint import load_restorer
from noiseda.data.datasets import ImageStore, load_pairs
from noiseda.data.io import write_atomic
from noiseda.errors import NoisedaError
from noiseda.infer import for_inference, restore_safely
from noiseda.metrics import psnr, ssim


def score_pairs(
    net, spec: dict, pairs_dir: str, y_channel: bool, device, tile: Optional[int] = 512, include_input: bool = True,
) -> list[dict]:
    rows = []
    for x_path, y_path in load_pairs(pairs_dir, f"pairs {pairs_dir}"):
        x, y = ImageStore([x_path], False)[0], ImageStore([y_path], False)[0]
        if x.shape != y.shape:
            raise NoisedaError(f"size mismatch: {x_path} {tuple(x.shape)} vs {y_path} {tuple(y.shape)}")
        out = restore_safely(net, x, spec["value_range"], tile, 32, device)
        row = {"image": x_path.name, "psnr": psnr(out, y, y_channel), "ssim": ssim(out, y, y_channel)}
        if include_input:
            row.update(input_psnr=psnr(x, y, y_channel), input_ssim=ssim(x, y, y_channel))
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "image"]
    return {"images": len(rows), **{k: sum(r[k] for r in rows) / len(rows) for k in keys}}


def format_table(summaries: dict[str, dict]) -> str:
    lines = ["| test set | images | input PSNR | input SSIM | PSNR | SSIM |", "|---|---|---|---|---|---|"]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | {s['images']} | {s.get('input_psnr', float('nan')):.2f} | "
            f"{s.get('input_ssim', float('nan')):.4f} | {s['psnr']:.2f} | {s['ssim']:.4f} |"
        )
    return "\n".join(lines)


def evaluate(
    weights: str,
    pairs: Sequence[str],
    out_dir: Optional[str] = None,
    y_channel: Optional[bool] = None,
    device: str = "cpu",
    tile: Optional[int] = 512,
    precision: str = "no",
) -> dict[str, dict]:
    """Score ``weights`` on each paired folder; writes CSV/JSON/Markdown into ``out_dir`` if given."""
    for p in pairs:  # check every test set before spending time on any
        load_pairs(p, f"pairs {p}")
    net, spec = load_restorer(weights, device)
    net = for_inference(net, device, precision)
    if y_channel is None:
        y_channel = spec.get("task") == "derain"
    summaries, all_rows = {}, {}
    with torch.inference_mode():
        for p in pairs:
            name = Path(p).name or str(p)
            if name in summaries:
                name = str(p)
            rows = score_pairs(net, spec, p, y_channel, device, tile)
            all_rows[name], summaries[name] = rows, summarize(rows)
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in all_rows.items():
            buf = io.StringIO(newline="")
            w = csv.DictWriter(buf, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
            write_atomic(out / f"{name}.csv", buf.getvalue())
        meta = {"weights": str(weights), "y_channel": y_channel, "precision": precision, "net": spec.get("net"), "task": spec.get("task")}
        write_atomic(out / "summary.json", json.dumps({"meta": meta, "results": summaries}, indent=2))
        write_atomic(out / "summary.md", format_table(summaries) + "\n")
    return summaries
