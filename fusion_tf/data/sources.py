"""Readers for the raw training sources: COCO-style instance annotations and plain image/mask folders.

Each reader yields :class:`Sample` (an image path, a binary object mask, an id) and knows nothing
about any method's recipe, so other methods' readers (e.g. MFIF-GAN's VOC) can live beside these.
COCO segmentations are decoded here with NumPy/OpenCV — polygons *and* RLE (uncompressed ``counts``
lists and COCO's compressed strings) — because ``pycocotools`` is not a dependency.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from fusion_tf.core.imageio import IMAGE_SUFFIXES, natural_key
from fusion_tf.errors import InputImageError


@dataclass
class Sample:
    """One training source: the image file, its binary object mask (uint8 0/1, H×W) and a stable id."""

    image_path: Path
    mask: np.ndarray
    sample_id: str


# ----------------------------------------------------------------------------------------------
# COCO segmentation decoding
# ----------------------------------------------------------------------------------------------
def rle_counts_from_string(s: str) -> list[int]:
    """Decode COCO's compressed RLE string (LEB128-like, 6 bits per char, deltas after the 2nd run)."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_rle(rle: dict) -> np.ndarray:
    """RLE ``{"size": [h, w], "counts": list | str}`` → uint8 H×W mask (runs are column-major, 0 first)."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = rle_counts_from_string(counts)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() != h * w or np.any(counts < 0):
        raise InputImageError(f"malformed RLE: runs sum to {int(counts.sum())}, image has {h * w} pixels")
    values = np.arange(len(counts)) % 2
    flat = np.repeat(values.astype(np.uint8), counts)
    return flat.reshape((h, w), order="F")


def decode_polygons(polygons: list, height: int, width: int) -> np.ndarray:
    """Polygons ``[[x1, y1, x2, y2, …], …]`` → uint8 mask, rasterised with OpenCV (1/8-px vertices).

    pycocotools rasterises slightly differently along edges (about one boundary pixel); irrelevant
    for a 20k–170k-pixel mask resized to 256².
    """
    import cv2

    mask = np.zeros((height, width), np.uint8)
    shift = 3
    pts = [np.round(np.asarray(p, np.float64).reshape(-1, 2) * (1 << shift)).astype(np.int32)
           for p in polygons if len(p) >= 6]
    if pts:
        cv2.fillPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=shift)
    return mask


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """Any COCO ``segmentation`` field (polygon list, RLE dict, or list of RLE dicts) → uint8 0/1 mask."""
    if isinstance(segmentation, dict):
        return decode_rle(segmentation)
    if isinstance(segmentation, list) and segmentation and isinstance(segmentation[0], dict):
        return np.bitwise_or.reduce([decode_rle(r) for r in segmentation])
    if isinstance(segmentation, list):
        return decode_polygons(segmentation, height, width)
    raise InputImageError(f"unknown COCO segmentation type {type(segmentation).__name__}")


# ----------------------------------------------------------------------------------------------
# COCO layout
# ----------------------------------------------------------------------------------------------
def find_coco_annotations(root: str | os.PathLike) -> list[Path]:
    """``instances_*.json`` under ``root/annotations`` (COCO's own layout) or directly in ``root``."""
    root = Path(root)
    if root.is_file() and root.suffix == ".json":
        return [root]
    if not root.is_dir():
        raise InputImageError(f"COCO root not found: {root}")
    found = sorted((root / "annotations").glob("instances_*.json")) + sorted(root.glob("instances_*.json"))
    if not found:
        raise InputImageError(f"{root}: no annotations/instances_*.json (expected a COCO 2014 style layout)")
    return found


def _image_dirs(ann_file: Path) -> list[Path]:
    # instances_train2014.json → <root>/train2014; also accept <root>/images and <root>
    split = ann_file.stem[len("instances_"):]
    base = ann_file.parent.parent if ann_file.parent.name == "annotations" else ann_file.parent
    return [base / split, base / "images" / split, base / "images", base]


def coco_single_object_samples(
    root: str | os.PathLike, min_area: float = 20_000, max_area: float = 170_000
) -> Iterator[Sample]:
    """Images with exactly **one** instance annotation whose ``area`` lies in [min_area, max_area].

    GACN's selection rule (spec §4.1).  Every annotation of an image counts, crowd ones included, and
    ``area`` is the annotation's own field (as COCO tools report it).  Ids are ``<file>:<image id>``.
    """
    for ann_file in find_coco_annotations(root):
        try:
            data = json.loads(ann_file.read_text(encoding="utf-8"))
            images = {int(im["id"]): im for im in data["images"]}
            per_image: dict[int, list] = defaultdict(list)
            for ann in data["annotations"]:
                per_image[int(ann["image_id"])].append(ann)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputImageError(f"{ann_file}: not a COCO instances file ({exc})") from None
        dirs = _image_dirs(ann_file)
        for image_id in sorted(per_image):
            anns = per_image[image_id]
            if len(anns) != 1 or image_id not in images:
                continue
            ann, info = anns[0], images[image_id]
            if not (min_area <= float(ann.get("area", 0.0)) <= max_area):
                continue
            path = next((d / info["file_name"] for d in dirs if (d / info["file_name"]).is_file()), None)
            if path is None:
                raise InputImageError(f"{ann_file}: image {info['file_name']} not found in {dirs[0]}")
            mask = decode_segmentation(ann["segmentation"], int(info["height"]), int(info["width"]))
            yield Sample(path, mask, f"{ann_file.stem}:{image_id}")


# ----------------------------------------------------------------------------------------------
# Plain folders
# ----------------------------------------------------------------------------------------------
def folder_samples(images_dir: str | os.PathLike, masks_dir: str | os.PathLike) -> Iterator[Sample]:
    """Pairs ``images_dir/NAME.ext`` with ``masks_dir/NAME.<any image suffix>`` (same file stem).

    Mask pixels that are non-zero are the object (grey or colour masks both work).  Images without a
    mask are an error rather than silently skipped, so a misnamed folder is noticed.
    """
    import cv2

    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise InputImageError(f"not a folder: {d}")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    images = sorted((p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
    if not images:
        raise InputImageError(f"no images in {images_dir}")
    for path in images:
        mask_path = masks.get(path.stem)
        if mask_path is None:
            raise InputImageError(f"no mask for {path.name} in {masks_dir} (expected {path.stem}.png or similar)")
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise InputImageError(f"cannot read mask {mask_path}")
        if mask.ndim == 3:
            mask = mask.max(axis=-1)
        yield Sample(path, (mask != 0).astype(np.uint8), path.stem)


# ----------------------------------------------------------------------------------------------
# PASCAL VOC 2012 segmentation layout (MFIF-GAN)
# ----------------------------------------------------------------------------------------------
def find_voc_root(root: str | os.PathLike) -> Path:
    """The folder holding ``JPEGImages/`` and ``SegmentationClass/``: ``root`` itself or
    ``root/VOC2012`` / ``root/VOCdevkit/VOC2012`` (the layouts the VOC tarball unpacks to)."""
    root = Path(root)
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (cand / "JPEGImages").is_dir() and (cand / "SegmentationClass").is_dir():
            return cand
    raise InputImageError(f"{root}: no JPEGImages/ and SegmentationClass/ (expected a PASCAL VOC 2012 layout)")


def voc_samples(root: str | os.PathLike) -> Iterator[Sample]:
    """Every ``JPEGImages/<id>.jpg`` with a ``SegmentationClass/<id>.png``, sorted by id (2,913 in VOC 2012).

    The PNGs are palette images whose pixel values are class indices; **every index ≠ 0 is
    foreground**, including the 255 "void" band around objects — MFIF-GAN's rule (spec §5), which
    widens each focus region by a few pixels.  A PNG that is not a palette/grey index image is refused,
    because converting an RGB rendering would silently give colour values instead of indices.
    """
    from PIL import Image

    base = find_voc_root(root)
    pngs = sorted((base / "SegmentationClass").glob("*.png"), key=natural_key)
    if not pngs:
        raise InputImageError(f"{base / 'SegmentationClass'}: no .png segmentation maps")
    for png in pngs:
        image = base / "JPEGImages" / f"{png.stem}.jpg"
        if not image.is_file():
            raise InputImageError(f"{png.name} has no image {image}")
        try:
            with Image.open(png) as im:
                if im.mode not in ("P", "L"):
                    raise InputImageError(f"{png}: expected a palette (class-index) PNG, got mode {im.mode}")
                index = np.asarray(im)
        except OSError as exc:
            raise InputImageError(f"cannot read {png}: {exc}") from None
        yield Sample(image, (index != 0).astype(np.uint8), png.stem)
