"""Matplotlib figures of an evaluation (Agg canvas; pyplot and the global backend are untouched).

* ``bars.png`` — one panel per metric: mean per method with sample-std error bars.
* ``per_image.png`` — one panel per metric: the value of each method on each image (lines).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from fusion_tf import metrics as M

__all__ = ["plot_bars", "plot_per_image", "make_plots"]


def _grid(n: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _label(c: str) -> str:
    if c in M.INFO:
        return f"{c} ({'higher' if M.INFO[c].higher_is_better else 'lower'} is better)"
    return c


def plot_bars(summary: dict, columns: Sequence[str], path) -> Path:
    methods = list(summary)
    fig, axes = _grid(len(columns))
    x = np.arange(len(methods))
    for ax, c in zip(axes, columns):
        mean = [summary[m]["metrics"][c]["mean"] for m in methods]
        std = [summary[m]["metrics"][c]["std"] for m in methods]
        ax.bar(x, mean, yerr=std, capsize=3, color=[f"C{k % 10}" for k in range(len(methods))])
        ax.set_xticks(x, methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(_label(c), fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    fig.savefig(path, dpi=90)
    return Path(path)


def plot_per_image(records: Sequence[dict], columns: Sequence[str], path) -> Path:
    methods = list(dict.fromkeys(r["method"] for r in records))
    images = list(dict.fromkeys(r["image"] for r in records))
    pos = {im: k for k, im in enumerate(images)}
    fig, axes = _grid(len(columns))
    for ax, c in zip(axes, columns):
        for k, m in enumerate(methods):
            rows = [r for r in records if r["method"] == m]
            xs = [pos[r["image"]] for r in rows]
            ys = [np.nan if r.get(c) is None else float(r[c]) for r in rows]
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1, color=f"C{k % 10}", label=m)
        ax.set_title(_label(c), fontsize=9)
        ax.set_xticks(range(len(images)), images if len(images) <= 12 else [""] * len(images),
                      rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=8)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=90)
    return Path(path)


def make_plots(summary: dict, records: Sequence[dict], columns: Sequence[str], out_dir) -> list[Path]:
    out_dir = Path(out_dir)
    return [plot_bars(summary, columns, out_dir / "bars.png"),
            plot_per_image(records, columns, out_dir / "per_image.png")]
