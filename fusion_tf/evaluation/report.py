"""Per-image and summary reports: CSV, Markdown and JSON.

Summary statistics per method and metric are the mean and the sample standard deviation (ddof 1;
0 for a single image) over the images, ignoring NaN values (e.g. MS-SSIM on images too small for
five scales); ``n`` counts the finite values.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from fusion_tf import metrics as M
from fusion_tf.core.color import MATLAB_GREY_COEFFS

__all__ = ["summarize", "write_per_image_csv", "write_summary_csv", "write_summary_md", "write_summary_json"]

GREY_RULE = ("MATLAB rgb2gray on uint8 ({} R + {} G + {} B, rounded half away from zero) applied to "
             "sources and fused image").format(*MATLAB_GREY_COEFFS)


def _columns(records, metric_ids):
    has_seconds = any(r.get("seconds") is not None for r in records)
    return list(metric_ids) + (["seconds"] if has_seconds else [])


def _fmt(v) -> str:
    if v is None:
        return ""
    v = float(v)
    return "nan" if math.isnan(v) else repr(v)


def write_per_image_csv(records: Sequence[dict], metric_ids: Sequence[str], path) -> Path:
    cols = _columns(records, metric_ids)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "image", *cols])
        for r in records:
            w.writerow([r["method"], r["image"], *(_fmt(r.get(c)) for c in cols)])
    return Path(path)


def summarize(records: Sequence[dict], metric_ids: Sequence[str]) -> dict:
    """``{method: {"n_images": k, "metrics": {id: {"mean", "std", "n"}}}}`` in first-seen order."""
    cols = _columns(records, metric_ids)
    out: dict[str, dict] = {}
    for method in dict.fromkeys(r["method"] for r in records):
        rows = [r for r in records if r["method"] == method]
        stats = {}
        for c in cols:
            v = np.array([np.nan if r.get(c) is None else float(r[c]) for r in rows], dtype=np.float64)
            v = v[np.isfinite(v)]
            stats[c] = {"mean": float(v.mean()) if v.size else float("nan"),
                        "std": float(v.std(ddof=1)) if v.size > 1 else (0.0 if v.size else float("nan")),
                        "n": int(v.size)}
        out[method] = {"n_images": len(rows), "metrics": stats}
    return out


def write_summary_csv(summary: dict, metric_ids: Sequence[str], path) -> Path:
    cols = [c for c in next(iter(summary.values()))["metrics"]] if summary else list(metric_ids)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "n_images", *(f"{c}_{s}" for c in cols for s in ("mean", "std"))])
        for method, s in summary.items():
            w.writerow([method, s["n_images"],
                        *(_fmt(s["metrics"][c][k]) for c in cols for k in ("mean", "std"))])
    return Path(path)


def _direction(c: str) -> str:
    if c not in M.INFO:
        return ""
    return " ↑" if M.INFO[c].higher_is_better else " ↓"


def write_summary_md(summary: dict, metric_ids: Sequence[str], path, title: str = "Fusion metrics") -> Path:
    cols = [c for c in next(iter(summary.values()))["metrics"]] if summary else list(metric_ids)
    lines = [f"# {title}", "",
             "Mean ± sample standard deviation over the images (↑ higher is better, ↓ lower is better).",
             f"Grey conversion: {GREY_RULE}.", ""]
    # one row per metric keeps the table readable for many metrics
    methods = list(summary)
    lines.append("| metric | " + " | ".join(methods) + " |")
    lines.append("|---|" + "---|" * len(methods))
    for c in cols:
        cells = []
        for m in methods:
            st = summary[m]["metrics"][c]
            cells.append("—" if math.isnan(st["mean"]) else f"{st['mean']:.4f} ± {st['std']:.4f}")
        lines.append(f"| `{c}`{_direction(c)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Images per method: " + ", ".join(f"{m} {summary[m]['n_images']}" for m in methods) + ".")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def _json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return x


def write_summary_json(summary: dict, metric_ids: Sequence[str], path, context: dict | None = None) -> Path:
    doc = {
        "metrics": {c: {"title": M.INFO[c].title, "higher_is_better": M.INFO[c].higher_is_better,
                        "needs_sources": M.INFO[c].needs_sources,
                        "function": f"{M.INFO[c].func.__module__}.{M.INFO[c].func.__name__}"}
                    for c in metric_ids},
        "grey_conversion": GREY_RULE,
        "statistics": "mean and sample std (ddof=1) over images, NaN ignored; null = not finite",
        "methods": summary,
        **(context or {}),
    }
    Path(path).write_text(json.dumps(_json_safe(doc), indent=2) + "\n", encoding="utf-8")
    return Path(path)
