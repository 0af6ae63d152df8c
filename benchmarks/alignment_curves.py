"""The gradient alignment that the shortcut monitor logged during training (``align/*`` in
metrics.jsonl: runs with data.val_pairs), per sweep variant and step, over seeds: a JSON and
a figure (mean over seeds, band from the lowest to the highest seed).

    python benchmarks/alignment_curves.py runs/sweep-adapt-cpu --variants noise-da noise-da-lam1 \\
        --out benchmarks/results/alignment-adapt-cpu.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quality import machine

from noiseda.evaluation.plots import pyplot, save_figure
from noiseda.evaluation.stats import t_interval

KEYS = ("real_truth", "real_smooth", "real_input", "synt_truth", "real_snr")
LABELS = {"real_truth": "real: toward the truth", "real_smooth": "real: toward its blur",
          "real_input": "real: toward the input", "synt_truth": "synthetic: toward the truth",
          "real_snr": "real: draw SNR"}


def read_alignment(run: Path) -> dict[int, dict[str, float]]:
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line) if line.strip() else {}
        if "align/real_truth" in rec:
            out[rec["step"]] = {k: rec[f"align/{k}"] for k in KEYS}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_dir")
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--from-step", type=int, default=0,
                    help="leave out readings before this step (e.g. a frozen warm-up)")
    ap.add_argument("--out", required=True, help="JSON path; the figure goes beside it as .png")
    args = ap.parse_args()
    root = Path(args.sweep_dir)
    result = {"benchmark": "alignment-curves", "machine": machine(), "sweep": str(root), "variants": {}}
    for variant in args.variants:
        runs = sorted((root / "runs" / variant).glob("seed-*"))
        per_seed = {r.name: read_alignment(r) for r in runs if (r / "scores.json").is_file()}
        steps = sorted(set.intersection(*(set(v) for v in per_seed.values()))) if per_seed else []
        steps = [s for s in steps if s >= args.from_step]
        rows = []
        for step in steps:
            row = {"step": step}
            for key in KEYS:
                values = [per_seed[s][step][key] for s in per_seed]
                ci = t_interval(values)
                row[key] = {"mean": sum(values) / len(values), "min": min(values), "max": max(values),
                            "ci95_t": list(ci) if ci else None, "per_seed": values}
            rows.append(row)
        result["variants"][variant] = {"seeds": list(per_seed), "rows": rows}
        last = rows[-1] if rows else None
        if last:
            print(f"{variant} ({len(per_seed)} seeds), step {last['step']}: " + ", ".join(
                f"{k} {last[k]['mean']:+.3f}" for k in KEYS))
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1))
    plt = pyplot()
    if plt is None:
        return
    names = list(result["variants"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 3.6), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names):
        rows = result["variants"][name]["rows"]
        steps = [r["step"] for r in rows]
        for i, key in enumerate(KEYS[:4]):
            ax.plot(steps, [r[key]["mean"] for r in rows], marker="o", ms=3, color=f"C{i}", label=LABELS[key])
            ax.fill_between(steps, [r[key]["min"] for r in rows], [r[key]["max"] for r in rows], color=f"C{i}",
                            alpha=0.15, linewidth=0)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{name} ({len(result['variants'][name]['seeds'])} seeds)", fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cosine with the noise loss's gradient")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    save_figure(fig, out.with_suffix(".png"), rect=(0, 0.1, 1, 1))


if __name__ == "__main__":
    main()
