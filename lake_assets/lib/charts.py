"""Charts of a table's rows as PNG images (matplotlib, no display), for the UI's metadata."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence


def png(
    rows: Sequence[dict], x: str, ys: Sequence[str], kind: str = "bar", title: str = ""
) -> bytes:
    """`ys` against `x`, one series each (bars side by side, or lines), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: an image in memory
    import matplotlib.pyplot as plt

    labels = [str(r[x]) for r in rows]
    fig, axes = plt.subplots(len(ys), 1, figsize=(9, 2.4 * len(ys)), sharex=True, squeeze=False)
    try:
        for ax, y in zip(axes[:, 0], ys):
            values = [float(r[y] or 0) for r in rows]
            if kind == "line":
                ax.plot(labels, values, marker="o", color="#4f43dd")
            else:
                ax.bar(labels, values, color="#4f43dd")
            ax.set_ylabel(y)
            ax.grid(axis="y", alpha=0.3)
        axes[0, 0].set_title(title, fontsize=10, loc="left")
        axes[-1, 0].tick_params(axis="x", labelrotation=60, labelsize=7)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=80)
        return out.getvalue()
    finally:
        plt.close(fig)


def markdown_image(data: bytes, alt: str) -> str:
    """The PNG inline in markdown (a data URI), as Dagster's UI renders markdown metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode()})"
