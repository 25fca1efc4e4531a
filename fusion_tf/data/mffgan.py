"""``fusion-tf prepare mffgan``: near/far training pairs → MFF-GAN patch store."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fusion_tf.core import color
from fusion_tf.core.imageio import check_same_size, group_sources, list_images, read_image
from fusion_tf.data.patches import check_positive, write_indexed_layout, write_original_layout
from fusion_tf.errors import InputImageError


def training_luma(image: np.ndarray, rule: str) -> np.ndarray:
    """The grey plane MFF-GAN trains on: grey stays as is; colour → studio Y (as its MATLAB
    pre-processing wrote it, ``rule="studio"``) or Pillow's ``L`` (``rule="pil"``)."""
    if image.ndim == 2:
        return image
    if rule == "studio":
        return color.rgb_to_y_studio_matlab(image)
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("L"))


def collect_pairs(args) -> list[tuple[str, Path, Path]]:
    """(name, near, far) triples from ``--pairs DIR`` or ``--near DIR --far DIR``, minus ``--exclude``."""
    if args.pairs:
        groups = group_sources(args.pairs)
        triples = []
        for name, paths in groups.items():
            if len(paths) != 2:
                raise InputImageError(f"{args.pairs}: {name!r} has {len(paths)} sources; MFF-GAN trains on pairs")
            triples.append((name, paths[0], paths[1]))
    else:
        near, far = list_images(args.near), list_images(args.far)
        if len(near) != len(far):
            raise InputImageError(f"{args.near} has {len(near)} images but {args.far} has {len(far)}")
        triples = [(n.stem, n, f) for n, f in zip(near, far)]
    excluded = set(args.exclude or [])
    unknown = excluded - {t[0] for t in triples}
    if unknown:
        raise InputImageError(f"--exclude names not found among the pairs: {sorted(unknown)}")
    triples = [t for t in triples if t[0] not in excluded]
    if not triples:
        raise InputImageError("no training pairs left")
    return triples


def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", help="folder of pairs named <name>-A/-B, <name>_1/_2 or <name>_A/_B (A = near)")
    src.add_argument("--near", help="folder of near-focus images (the original's Train_near), with --far")
    parser.add_argument("--far", help="folder of far-focus images, same count and order as --near")
    parser.add_argument("--exclude", nargs="*", metavar="NAME", help="pair names to leave out (e.g. test pairs)")
    parser.add_argument("-o", "--out", "--output", dest="out", required=True,
                        help="output: a directory (original layout: Train_near/train.h5, Train_far/train.h5) "
                             "or a .h5 file (--layout indexed)")
    parser.add_argument("--layout", choices=("original", "indexed"), default="original",
                        help="original: the TF1 two-store layout (default); indexed: one compact file")
    parser.add_argument("--dtype", choices=("uint8", "float64"), default="uint8",
                        help="original layout only: uint8 grey levels (default) or the original's "
                             "normalised float64 (8× larger)")
    parser.add_argument("--patch", type=int, default=60)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--luma", choices=("studio", "pil"), default="studio",
                        help="grey plane of colour inputs (default: studio-swing Y as the original)")


def prepare(args) -> int:
    # options first: a bad one is one line, before any image is read or any output path is created
    if args.near and not args.far:
        raise InputImageError("--near needs --far")
    check_positive(patch=args.patch, stride=args.stride)
    if args.layout == "indexed" and not str(args.out).endswith(".h5"):
        raise InputImageError("--layout indexed writes one file: give --out a .h5 name")
    triples = collect_pairs(args)
    pairs = []
    for name, near_path, far_path in triples:
        near = training_luma(read_image(near_path, depth=8), args.luma)
        far = training_luma(read_image(far_path, depth=8), args.luma)
        check_same_size([near, far], [str(near_path), str(far_path)])
        pairs.append((near, far))
    attrs = {"pairs": [t[0] for t in triples], "luma": args.luma, "model": "mffgan"}
    if args.layout == "original":
        n = write_original_layout(args.out, pairs, args.patch, args.stride, args.dtype, attrs)
    else:
        n = write_indexed_layout(args.out, pairs, args.patch, args.stride, attrs=attrs)
    print(f"wrote {n} patch pairs of {args.patch}×{args.patch} (stride {args.stride}) from "
          f"{len(pairs)} pairs to {args.out}")
    return 0
