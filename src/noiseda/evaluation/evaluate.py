"""Scoring restorers on paired test folders: per-image CSV, summary JSON, Markdown tables;
``compare`` puts several restorers side by side (table, paired-difference figure, contact sheet, gap closed)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from noiseda.inference.export import load_restorer, resolve_weights
from noiseda.data.files import load_pairs
from noiseda.data.store import load_image_pairs
from noiseda.data.io import Picture, write_atomic, write_image
from noiseda.errors import NoisedaError
from noiseda.evaluation.scoring import restore_and_score
from noiseda.inference.tiling import for_inference

METRICS = ("psnr", "ssim", "lpips")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}


def score_pairs(
    net, spec: dict, pairs_dir: str, y_channel: bool, device, tile: Optional[int] = 512, include_input: bool = True,
    lpips_net=None, on_output: Optional[Callable] = None,
) -> list[dict]:
    """One row per pair: PSNR/SSIM (and LPIPS with ``lpips_net``, always on RGB as the field
    reports it) of the restored image and, with ``include_input``, of the degraded input.
    ``on_output(index, name, x, out, y)`` sees every restored image."""
    pairs = load_image_pairs(pairs_dir, f"pairs {pairs_dir}")
    return restore_and_score(net, pairs, spec["value_range"], y_channel, device, tile, lpips_net=lpips_net,
                             include_input=include_input, on_output=on_output)


def summarize(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "image"]
    return {"images": len(rows), **{k: sum(r[k] for r in rows) / len(rows) for k in keys}}


def _fmt(v, digits: int) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def format_table(summaries: dict[str, dict]) -> str:
    has_lpips = any("lpips" in s for s in summaries.values())
    head = "| test set | images | input PSNR | input SSIM |" + (" input LPIPS |" if has_lpips else "")
    head += " PSNR | SSIM |" + (" LPIPS |" if has_lpips else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, s in summaries.items():
        cells = [name, str(s["images"]), _fmt(s.get("input_psnr"), 2), _fmt(s.get("input_ssim"), 4)]
        if has_lpips:
            cells.append(_fmt(s.get("input_lpips"), 4))
        cells += [_fmt(s["psnr"], 2), _fmt(s["ssim"], 4)] + ([_fmt(s.get("lpips"), 4)] if has_lpips else [])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _set_names(pairs: Sequence[str]) -> list[str]:
    names = []
    for p in pairs:
        name = Path(p.split(":", 1)[-1] if ":" in p and not Path(p).exists() else p).name or str(p)
        names.append(name if name not in names else str(p))
    return names


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, buf.getvalue())


def evaluate(
    weights: str,
    pairs: Sequence[str],
    out_dir: Optional[str] = None,
    y_channel: Optional[bool] = None,
    device: str = "cpu",
    tile: Optional[int] = 512,
    precision: str = "no",
    lpips_net=None,
    save_images: Optional[str] = None,
    on_output: Optional[Callable] = None,
    rows_out: Optional[dict] = None,
) -> dict[str, dict]:
    """Score ``weights`` on each paired folder; writes CSV/JSON/Markdown into ``out_dir`` and the
    restored images into ``save_images`` (one subfolder per test set) if given. ``rows_out``
    receives the per-image scores of each test set."""
    names, sources = _set_names(pairs), set()
    for name, p in zip(names, pairs):  # check every test set before spending time on any
        for x_path, y_path in load_pairs(p, f"pairs {p}"):
            sources |= {x_path.resolve(), y_path.resolve()}
            if save_images and (Path(save_images) / name / x_path.name).resolve() in sources:
                raise NoisedaError(f"--save-images {save_images} would overwrite the test image {x_path}")
    net, spec = load_restorer(weights, device)
    net = for_inference(net, device, precision)
    if y_channel is None:
        y_channel = spec.get("task") == "derain"
    summaries, all_rows = {}, {}
    with torch.inference_mode():
        for name, p in zip(names, pairs):
            def hook(i, image, x, out, y, name=name):
                if save_images:
                    write_image(Path(save_images) / name / image,
                                Picture(out.clamp(0, 1).permute(1, 2, 0).numpy()))
                if on_output is not None:
                    on_output(name, i, x, out, y)

            rows = score_pairs(net, spec, p, y_channel, device, tile, lpips_net=lpips_net, on_output=hook)
            all_rows[name], summaries[name] = rows, summarize(rows)
    if rows_out is not None:
        rows_out.update(all_rows)
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in all_rows.items():
            _write_csv(out / f"{name}.csv", rows)
        meta = {"weights": str(weights), "y_channel": y_channel, "precision": precision, "net": spec.get("net"),
                "task": spec.get("task"), "lpips": lpips_net is not None}
        write_atomic(out / "summary.json", json.dumps({"meta": meta, "results": summaries}, indent=2))
        write_atomic(out / "summary.md", format_table(summaries) + "\n")
    return summaries


# ---- comparing several restorers ----

def parse_named(specs: Sequence[str], option: str = "--compare", value: str = "WEIGHTS") -> dict[str, str]:
    """["vanilla=runs/a", "runs/b"] -> {"vanilla": "runs/a", "b": "runs/b"}; names must differ."""
    named: dict[str, str] = {}
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep:
            name, path = Path(s.rstrip("/")).name, s
        if not name or name in named:
            raise NoisedaError(f"{option}: duplicate or empty name {name!r}; write NAME={value}")
        named[name] = path
    return named


def gap_closed(results: dict, baseline: str, oracle: str, metric: str = "psnr") -> dict[str, dict[str, float]]:
    """Per method and test set: (method - baseline) / (oracle - baseline), the share of the
    synthetic-to-real gap closed (1: as good as training on real pairs; None if no gap)."""
    out = {}
    for method, sets in results.items():
        out[method] = {}
        for name, s in sets.items():
            gap = results[oracle][name][metric] - results[baseline][name][metric]
            out[method][name] = None if abs(gap) < 1e-12 else (s[metric] - results[baseline][name][metric]) / gap
    return out


def compare_table(results: dict, gaps: Optional[dict] = None) -> str:
    sets = list(next(iter(results.values())))
    has_lpips = all("lpips" in s for m in results.values() for s in m.values())
    metrics = ["psnr", "ssim"] + (["lpips"] if has_lpips else [])
    head = ["method"] + [f"{name} {m.upper()}" for name in sets for m in metrics]
    if gaps:
        head += [f"{name} gap closed" for name in sets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = next(iter(results.values()))
    rows = [("input", {n: {m: first[n].get(f"input_{m}") for m in metrics} for n in sets})] + list(results.items())
    for method, by_set in rows:
        cells = [method] + [_fmt(by_set[n][m], 2 if m == "psnr" else 4) for n in sets for m in metrics]
        if gaps:
            cells += [_fmt(gaps.get(method, {}).get(n), 2) for n in sets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_figure(rows: dict[str, dict[str, list[dict]]], baseline: str, path: Path) -> bool:
    """Per metric, per test set: every image's difference to the baseline (dots), their mean and
    95% t-interval (bar), and zero. Differences, not bars from a cut axis: a 0.001 SSIM gap looks
    as small as it is, and the spread over images shows whether it is consistent.
    False (nothing written) without matplotlib."""
    from noiseda.evaluation.plots import pyplot, save_figure
    from noiseda.evaluation.stats import t_interval

    plt = pyplot()
    if plt is None:
        return False
    sets = list(rows[baseline])
    methods = [m for m in rows if m != baseline] or [baseline]
    metrics = [m for m in METRICS if all(m in r[0] for by_set in rows.values() for r in by_set.values() if r)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.6), squeeze=False)
    width = 0.8 / len(methods)
    for ax, metric in zip(axes[0], metrics):
        for j, method in enumerate(methods):
            color = f"C{j}"
            for i, name in enumerate(sets):
                diffs = [r[metric] - (b[metric] if method != baseline else 0.0)
                         for r, b in zip(rows[method][name], rows[baseline][name])]
                x = i + (j - (len(methods) - 1) / 2) * width
                jitter = [x + width * 0.3 * ((k * 0.618) % 1 - 0.5) for k in range(len(diffs))]
                ax.scatter(jitter, diffs, s=9, color=color, alpha=0.45, linewidths=0,
                           label=method if i == 0 else None)
                mean = sum(diffs) / len(diffs)
                ci = t_interval(diffs)
                err = [[mean - ci[0]], [ci[1] - mean]] if ci else None
                ax.errorbar([x], [mean], yerr=err, fmt="D", color=color, markersize=5, capsize=3)
        if len(methods) > 1 or methods[0] != baseline:
            ax.axhline(0.0, color="0.4", linewidth=0.8)
        better = "higher is better" if HIGHER_IS_BETTER[metric] else "lower is better"
        what = f"minus {baseline}" if methods[0] != baseline else "per image"
        ax.set_title(f"{metric.upper()} {what} ({better})", fontsize=9)
        ax.set_xticks(range(len(sets)), sets)
    axes[0][0].legend(fontsize=8, title="dots: images; diamond: mean, 95% CI", title_fontsize=7)
    save_figure(fig, path, dpi=120)
    return True


def compare(
    named_weights: dict,  # name -> weights folder, or a PerImage restorer
    pairs: Sequence[str],
    out_dir: str,
    y_channel: Optional[bool] = None,
    device: str = "cpu",
    tile: Optional[int] = 512,
    precision: str = "no",
    lpips_net=None,
    baseline: Optional[str] = None,
    oracle: Optional[str] = None,
    sheet_images: int = 3,
    crop: int = 128,
) -> dict:
    """Evaluate each restorer on every test set; write compare.{md,json}, compare.png (with
    matplotlib) and compare-sheet.png (same centre crops: input | each method | ground truth)."""
    from noiseda.evaluation.sheet import centre_crop, contact_sheet

    baseline = baseline or next(iter(named_weights))
    for role, name in (("--baseline", baseline), ("--oracle", oracle)):
        if name is not None and name not in named_weights:
            raise NoisedaError(f"{role} {name!r} is not among the compared names: {', '.join(named_weights)}")
    for weights in named_weights.values():  # a missing folder fails before any restorer runs
        if isinstance(weights, (str, Path)):
            resolve_weights(weights)
    out = Path(out_dir)
    crops: dict[tuple[str, int], dict[str, torch.Tensor]] = {}

    def keep(method):
        def hook(set_name, i, x, restored, y):
            if i < sheet_images:
                cell = crops.setdefault((set_name, i), {})
                cell.setdefault("input", centre_crop(x, crop))
                cell.setdefault("ground truth", centre_crop(y, crop))
                cell[method] = centre_crop(restored.clamp(0, 1), crop)
        return hook

    results, rows = {}, {}
    for method, weights in named_weights.items():
        rows[method] = {}
        results[method] = evaluate(weights, pairs, str(out / method), y_channel, device, tile, precision,
                                   lpips_net, on_output=keep(method), rows_out=rows[method])
    gaps = gap_closed(results, baseline, oracle) if oracle else None
    table = compare_table(results, gaps)
    write_atomic(out / "compare.md", table + "\n")
    write_atomic(out / "compare.json", json.dumps(
        {"baseline": baseline, "oracle": oracle, "results": results, "gap_closed_psnr": gaps}, indent=2))
    figure = compare_figure(rows, baseline, out / "compare.png")
    labels = ["input", *named_weights, "ground truth"]
    rows = [[cell[label] for label in labels] for cell in crops.values()]
    if rows:
        contact_sheet(rows, labels, out / "compare-sheet.png")
    return {"results": results, "gaps": gaps, "table": table, "figure": figure}
