"""Figures with matplotlib (a dependency; a broken install without it still gets every table)."""

from __future__ import annotations

import io
from pathlib import Path

from noiseda.data.io import write_atomic


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig, path: Path, dpi: int = 110, rect=None) -> None:
    """Render to PNG in memory, then write atomically; the figure is closed. ``rect``: the
    part of the figure the axes may fill (room for a figure legend outside it)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout(rect=rect)
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    write_atomic(path, buf.getvalue())
