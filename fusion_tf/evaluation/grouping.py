"""Which fused image belongs to which source group.

Source groups come from :func:`fusion_tf.core.imageio.group_sources` (``<image>_1``/``_2``…,
``<image>-A``/``-B``…, ``<image>_A``/``_B``…). A ``--fused NAME=DIR`` folder holds one
``<image>.<ext>`` per group. Other naming is mapped with ``--match CSV`` (header row required):

* ``method,image,path`` — a row per fused image. ``method`` is a NAME given with ``--fused``
  (relative ``path`` resolved against its DIR) or a new method defined by the CSV alone (relative
  ``path`` resolved against the CSV's folder).
* ``image,path`` — applies to every ``--fused`` method, ``path`` relative to each method's DIR.

Groups not listed in the CSV fall back to the ``<image>.<ext>`` lookup.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fusion_tf.core.imageio import IMAGE_SUFFIXES, group_sources
from fusion_tf.errors import FusionError, InputImageError

__all__ = ["parse_named", "parse_models", "source_groups", "read_match_csv", "fused_paths"]


def parse_named(values, flag: str, value_required: bool = True) -> list[tuple[str, str | None]]:
    """Parse ``NAME=VALUE`` (or ``NAME`` when the value is optional) arguments, names unique."""
    out, seen = [], set()
    for raw in values or []:
        name, sep, value = raw.partition("=")
        name, value = name.strip(), value.strip()
        if not name or (value_required and not value) or (sep and not value):
            form = "NAME=DIR" if value_required else "NAME[=WEIGHTS]"
            raise FusionError(f"{flag} expects {form}, got {raw!r}")
        if name in seen:
            raise FusionError(f"method name {name!r} given twice")
        seen.add(name)
        out.append((name, value or None))
    return out


def parse_models(values) -> list[tuple[str, str, str | None]]:
    """``--model [LABEL:]MODEL[=WEIGHTS]`` → ``(label, model, weights)``; labels unique.

    The label is the method's column in the reports, so one model can appear twice with different
    weights (``--model ours:mffgan --model orig:mffgan=…/CGAN.model-19``).  Models are checked here,
    before anything is fused.
    """
    from fusion_tf import registry

    out = []
    for label, weights in parse_named(values, "--model", value_required=False):
        column, sep, model = label.partition(":")
        if sep and not (column.strip() and model.strip()):
            raise FusionError(f"--model expects [LABEL:]MODEL[=WEIGHTS], got {label!r}")
        model = model.strip() if sep else column
        registry.get(model)  # unknown model: one line, listing the available ones
        out.append((column.strip(), model, weights))
    return out


def source_groups(folder) -> dict[str, list[Path]]:
    """``{image: [source paths in order]}`` for a sources folder (at least 2 sources per group)."""
    return group_sources(folder, min_sources=2)


def read_match_csv(path) -> list[dict]:
    """Rows of a ``--match`` CSV as dicts with keys method (or None), image, path."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"match file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = [c.strip().lower() for c in (reader.fieldnames or [])]
            if not {"image", "path"} <= set(cols):
                raise FusionError(f"{path}: need a header with columns image,path (and optionally method)")
            rows = []
            for n, row in enumerate(reader, start=2):
                row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                if not row.get("image") or not row.get("path"):
                    raise FusionError(f"{path}:{n}: empty image or path")
                rows.append({"method": row.get("method") or None, "image": row["image"],
                             "path": row["path"]})
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputImageError(f"cannot read match file {path}: {exc}") from None
    return rows


def _lookup(folder: Path, image: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for cand in (folder / f"{image}{suffix}", folder / f"{image}{suffix.upper()}"):
            if cand.is_file():
                return cand
    return None


def fused_paths(images, fused: list[tuple[str, str]], match: str | None = None) -> dict[str, dict[str, Path]]:
    """``{method: {image: fused path}}`` for every ``--fused`` method (and CSV-only methods).

    Every method must provide a fused image for every source group; a missing one is an error.
    """
    images = list(images)
    known = set(images)
    dirs = {}
    for name, folder in fused:
        d = Path(folder)
        if not d.is_dir():
            raise InputImageError(f"--fused {name}: not a folder: {d}")
        dirs[name] = d
    explicit: dict[str, dict[str, Path]] = {name: {} for name in dirs}
    if match:
        csv_dir = Path(match).parent
        for row in read_match_csv(match):
            if row["image"] not in known:
                raise FusionError(f"{match}: image {row['image']!r} is not a source group "
                                  f"(groups: {', '.join(images[:5])}{', ...' if len(images) > 5 else ''})")
            p = Path(row["path"])
            targets = [row["method"]] if row["method"] else list(dirs)
            if not targets:
                raise FusionError(f"{match}: rows without a method column need --fused NAME=DIR")
            for method in targets:
                base = dirs.get(method, csv_dir)
                explicit.setdefault(method, {})[row["image"]] = p if p.is_absolute() else base / p
    out: dict[str, dict[str, Path]] = {}
    for method, mapping in explicit.items():
        paths = {}
        for image in images:
            p = mapping.get(image)
            if p is None and method in dirs:
                p = _lookup(dirs[method], image)
            if p is None:
                where = dirs.get(method, Path(match) if match else None)
                raise InputImageError(f"{method}: no fused image for {image!r} in {where}")
            if not p.is_file():
                raise InputImageError(f"{method}: fused image not found: {p}")
            paths[image] = p
        out[method] = paths
    return out
