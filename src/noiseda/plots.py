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


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Render to PNG in memory, then write atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    write_atomic(path, buf.getvalue())
