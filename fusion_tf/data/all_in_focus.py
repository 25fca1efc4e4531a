"""Substitute training source: all-in-focus images and focus masks made from real multi-focus pairs.

GACN (COCO), MFIF-GAN (VOC) and GIPC-GAN (MFI-DRC: MFI-WHU full-clear images) all train on sharp
images with binary foreground masks, and none of those sets is on these machines.  What is here are
multi-focus *pairs*.  This module turns pairs into the sharp-image + mask form those recipes need:

* the pair is fused by the faithful GACN port with the **released** GACN weights (not a model we
  train), giving an all-in-focus image;
* GACN's final decision map, thresholded at ½, is the mask (1 = the first source is the sharp one);
* optionally, the full images are cut into fixed-size crops whose mask is mixed enough (both classes
  present), which multiplies the few images into enough samples for GACN's / MFIF-GAN's 256² stores.

Leakage policy (``datasets/README.md``): only the 30 MFI-WHU pairs are used as a source.  The
evaluation sets — Lytro (all 20 pairs are in GACN's 26 test pairs), the grayscale set and
``gacn_test26`` — are never used; :func:`build` refuses a source folder that holds any of their names.

The result is a folder pair ``images/`` + ``masks/`` (PNG, same file stems) that the per-model
``prepare`` commands read with ``--images DIR --masks DIR``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np

from fusion_tf.core.imageio import group_sources, list_images, read_images, write_image
from fusion_tf.errors import InputImageError

#: file-name patterns of the evaluation sets; a source that matches one is refused (test leakage)
EVALUATION_NAMES = re.compile(r"(lytro|^g_\d|color_|gray_)", re.IGNORECASE)


def mask_from_decision(decision_map: np.ndarray) -> np.ndarray:
    """Binary mask (uint8 0/1): where the first source wins after GACN's boundary filtering."""
    return (np.asarray(decision_map) >= 0.5).astype(np.uint8)


def mixed_crops(image: np.ndarray, mask: np.ndarray, size: int, stride: int,
                min_fraction: float) -> list[tuple[int, int]]:
    """Top-left corners of ``size``² windows (row-major, ``stride`` apart, last one flush with the
    border) whose mask holds at least ``min_fraction`` of each class."""
    h, w = mask.shape

    def starts(n: int) -> list[int]:
        if n < size:
            return []
        s = list(range(0, n - size + 1, stride))
        return s if s[-1] == n - size else s + [n - size]

    keep = []
    for y in starts(h):
        for x in starts(w):
            frac = float(mask[y:y + size, x:x + size].mean())
            if min_fraction <= frac <= 1.0 - min_fraction:
                keep.append((y, x))
    return keep


class _NewSet:
    """Writes a set into a hidden sibling folder renamed to ``out_dir`` only when complete."""

    def __init__(self, out_dir: Path):
        if out_dir.exists():
            raise InputImageError(f"{out_dir} already exists; choose a new folder")
        self.out_dir = out_dir
        self.work = out_dir.with_name(f".{out_dir.name}.partial")

    def __enter__(self) -> Path:
        shutil.rmtree(self.work, ignore_errors=True)
        (self.work / "images").mkdir(parents=True)
        (self.work / "masks").mkdir()
        return self.work

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.work.rename(self.out_dir)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def _write_sample(work: Path, stem: str, image: np.ndarray, mask: np.ndarray) -> None:
    write_image(work / "images" / f"{stem}.png", image)
    write_image(work / "masks" / f"{stem}.png", mask * 255)


def build(pairs_dir: str | Path, out_dir: str | Path, gacn_weights: str | Path, progress: bool = True) -> dict:
    """Fuse every pair in ``pairs_dir`` with released GACN; write ``images/`` + ``masks/`` + manifest."""
    from fusion_tf import registry

    pairs_dir, out_dir = Path(pairs_dir), Path(out_dir)
    files = list_images(pairs_dir)
    if not files:
        raise InputImageError(f"no images in {pairs_dir}")
    leaked = [f.name for f in files if EVALUATION_NAMES.search(f.name)]
    if leaked:
        raise InputImageError(f"{pairs_dir} holds evaluation images ({leaked[0]} …): they must not become "
                              "training data")
    groups = group_sources(pairs_dir)
    bad = {name: len(g) for name, g in groups.items() if len(g) != 2}
    if bad:
        raise InputImageError(f"expected pairs, got {bad}")
    target = _NewSet(out_dir)
    fuser = registry.load_fuser("gacn", str(gacn_weights))
    manifest = {"source": str(pairs_dir), "fused_by": "GACN, released weights", "weights": str(gacn_weights),
                "mask": "GACN final decision map >= 0.5 (1 = first source sharp)", "samples": []}
    items = sorted(groups.items())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, unit="pair", desc="fusing with released GACN")
    with target as work:
        for name, paths in items:
            result = fuser.fuse(read_images(paths, mode="rgb"))
            mask = mask_from_decision(result.decision_map)
            _write_sample(work, name, result.fused, mask)
            manifest["samples"].append({"id": name, "mask_fraction": round(float(mask.mean()), 4)})
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def crop_set(set_dir: str | Path, out_dir: str | Path, size: int, stride: int = 128,
             min_fraction: float = 0.15) -> dict:
    """Cut a set made by :func:`build` into ``size``² crops with both classes present (:func:`mixed_crops`)."""
    from fusion_tf.core.imageio import read_image

    set_dir, out_dir = Path(set_dir), Path(out_dir)
    if not (set_dir / "manifest.json").is_file():
        raise InputImageError(f"{set_dir} is not a set made by this module (no manifest.json)")
    source = json.loads((set_dir / "manifest.json").read_text())
    manifest = {**{k: v for k, v in source.items() if k != "samples"}, "cropped_from": str(set_dir),
                "crop": size, "stride": stride, "min_fraction": min_fraction, "samples": []}
    with _NewSet(out_dir) as work:
        for sample in source["samples"]:
            image = read_image(set_dir / "images" / f"{sample['id']}.png", mode="rgb", depth=8)
            mask = (read_image(set_dir / "masks" / f"{sample['id']}.png", mode="grey", depth=8) > 127).astype(np.uint8)
            for k, (y, x) in enumerate(mixed_crops(image, mask, size, stride, min_fraction)):
                stem = f"{sample['id']}_c{k:02d}"
                m = mask[y:y + size, x:x + size]
                _write_sample(work, stem, image[y:y + size, x:x + size], m)
                manifest["samples"].append({"id": stem, "from": sample["id"], "window": [y, x],
                                            "mask_fraction": round(float(m.mean()), 4)})
        if not manifest["samples"]:
            raise InputImageError(f"no {size}×{size} crop of {set_dir} has both classes ≥ {min_fraction}")
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusion_tf.data.all_in_focus",
                                     description="all-in-focus images + masks from multi-focus pairs (released GACN)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="fuse pairs with released GACN → images/, masks/, manifest.json")
    p.add_argument("--pairs", required=True, help="folder of multi-focus pairs (e.g. ../shared/data/mfi_whu_30)")
    p.add_argument("--gacn-weights", required=True,
                   help="released GACN weights (…/reference/gacn/weights/GACN_state_dict_pytorch_layout.npz)")
    p.add_argument("-o", "--out", required=True, help="new folder")
    p = sub.add_parser("crop", help="cut a built set into N×N crops holding both classes")
    p.add_argument("set", help="folder written by 'build'")
    p.add_argument("-o", "--out", required=True, help="new folder")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--min-fraction", type=float, default=0.15, help="each class must cover this share of a crop")
    args = parser.parse_args(argv)
    from fusion_tf.errors import FusionError

    try:
        if args.command == "build":
            m = build(args.pairs, args.out, args.gacn_weights)
        else:
            m = crop_set(args.set, args.out, args.size, args.stride, args.min_fraction)
    except FusionError as exc:
        print(f"error: {exc}")
        return 2
    print(f"wrote {len(m['samples'])} all-in-focus images + masks to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
