"""Matplotlib figures of an evaluation (Agg canvas; pyplot and the global backend are untouched).

* ``bars.png`` — one panel per metric: mean per method with sample-std error bars.
* ``per_image.png`` — one panel per metric: the value of each method on each image (lines).
* :func:`plot_crops` — side-by-side crops of sources and fused results (the comparison report).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from fusion_tf import metrics as M

__all__ = ["plot_bars", "plot_per_image", "make_plots", "crop_window", "plot_crops"]


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


def plot_bars(summary: dict, columns: Sequence[str], path, dpi: int = 90) -> Path:
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
    fig.savefig(path, dpi=dpi)
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


def _window_sums(d: np.ndarray, size: int, step: int):
    ii = np.pad(d.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys = np.arange(0, d.shape[0] - size + 1, step)
    xs = np.arange(0, d.shape[1] - size + 1, step)
    sums = (ii[ys[:, None] + size, xs[None, :] + size] - ii[ys[:, None], xs[None, :] + size]
            - ii[ys[:, None] + size, xs[None, :]] + ii[ys[:, None], xs[None, :]])
    return ys, xs, sums


def crop_window(a: np.ndarray, b: np.ndarray, size: int, step: int = 8) -> tuple[int, int]:
    """Top-left corner (y, x) of the ``size``×``size`` window on the focus boundary: the one holding
    the most detail that is sharper in A *and* the most that is sharper in B (max of the smaller of
    the two sums of local |Laplacian| differences), where fusion methods must decide and differ.
    Deterministic (first maximum in raster order); (0, 0) when the image is not larger than ``size``."""
    from scipy import ndimage

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape[0] <= size or a.shape[1] <= size:
        return 0, 0
    d = ndimage.uniform_filter(np.abs(ndimage.laplace(a)), 9) - ndimage.uniform_filter(np.abs(ndimage.laplace(b)), 9)
    ys, xs, sharper_a = _window_sums(np.maximum(d, 0), size, step)
    _, _, sharper_b = _window_sums(np.maximum(-d, 0), size, step)
    k = int(np.argmax(np.minimum(sharper_a, sharper_b)))
    return int(ys[k // len(xs)]), int(xs[k % len(xs)])


def plot_crops(rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], path, dpi: int = 100) -> Path:
    """One row per image: ``(row label, [(panel title, grey uint8 crop), ...])``, drawn at one
    screen pixel per image pixel. Saved as an 8-bit grey PNG (the figure holds only grey values),
    a third of the size of matplotlib's RGBA file."""
    from io import BytesIO

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    n_rows = len(rows)
    n_cols = max(len(panels) for _, panels in rows)
    ch = max(p.shape[0] for _, panels in rows for _, p in panels)
    cw = max(p.shape[1] for _, panels in rows for _, p in panels)
    lab, pad_w, pad_h = 14, 6, 16  # pixels: row-label strip, between panels, titles
    width, height = lab + n_cols * (cw + pad_w), n_rows * (ch + pad_h)
    fig = Figure(figsize=(width / dpi, height / dpi))
    FigureCanvasAgg(fig)
    for r, (label, panels) in enumerate(rows):
        bottom = (height - (r + 1) * (ch + pad_h)) / height
        fig.text(lab / 2 / width, bottom + ch / 2 / height, label, rotation=90, fontsize=6.5,
                 ha="center", va="center")
        for c, (title, crop) in enumerate(panels):
            ax = fig.add_axes(((lab + c * (cw + pad_w)) / width, bottom, cw / width, ch / height))
            ax.set_axis_off()
            ax.imshow(crop, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(title, fontsize=6.5, pad=2)
    buf = BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("L").save(path, format="PNG", optimize=True)
    return Path(path)
