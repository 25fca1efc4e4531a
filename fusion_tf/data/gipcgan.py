"""``fusion-tf prepare gipcgan``: all-in-focus images + decision maps → (near, far, gt) patch store.

GIPC-GAN trains on MFI-DRC: 120 MFI-WHU all-in-focus images, foreground maps from Deep Region
Competition, and the pairs of Eqs. (18)–(19)

    I_A = F·I + (1 − F)·(G_σ ⊗ I)      (near: sharp foreground)
    I_B = F·(G_σ ⊗ I) + (1 − F)·I      (far:  sharp background)

then 80×80 windows from 90 randomly chosen images.  MFI-DRC is not public, so this module builds the
same kind of set from any sharp images with binary maps (``--images`` + ``--masks``, or PASCAL VOC via
``--voc``) — or, without maps, with seeded procedural ones.  Inferred (paper silent; see
``docs/gipcgan.md``): σ = 2 with MATLAB ``imgaussfilt`` (kernel 2⌈2σ⌉+1, replicate padding); synthesis
in RGB rounded to uint8 (as images saved to disk), then studio-swing Y (the network's input); stride
10, row-major windows; split 75 % / 25 % (= 90/30 of 120) by a seeded permutation.
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusion_tf.core import color
from fusion_tf.core.imageio import check_same_size, list_images, natural_key, read_image, write_image
from fusion_tf.core.ops import imgaussfilt_kernel
from fusion_tf.data.mffgan import training_luma
from fusion_tf.data.patches import check_positive, write_indexed_layout
from fusion_tf.errors import InputImageError

SOURCES = ("near", "far", "gt")
DEFAULT_SIGMA = 2.0


# ----------------------------------------------------------------------------------------------
# Synthesis (Eqs. 18–19)
# ----------------------------------------------------------------------------------------------
def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """MATLAB ``imgaussfilt(I, σ)`` on every channel: kernel 2⌈2σ⌉+1, replicate padding, float64 out."""
    from scipy.ndimage import correlate

    k = imgaussfilt_kernel(sigma)
    img = np.asarray(image, np.float64)
    if img.ndim == 2:
        return correlate(img, k, mode="nearest")
    return np.stack([correlate(img[..., c], k, mode="nearest") for c in range(img.shape[-1])], axis=-1)


def synthesize_pair(image: np.ndarray, mask: np.ndarray, sigma: float = DEFAULT_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(near, far) uint8 from a sharp uint8 image and a binary map F (1 = foreground), Eqs. 18–19."""
    f = (np.asarray(mask) > 0).astype(np.float64)
    if f.shape != image.shape[:2]:
        raise InputImageError(f"decision map is {f.shape[1]}×{f.shape[0]}, image {image.shape[1]}×{image.shape[0]}")
    if image.ndim == 3:
        f = f[..., None]
    sharp = image.astype(np.float64)
    blurred = gaussian_blur(image, sigma)
    near = f * sharp + (1.0 - f) * blurred
    far = f * blurred + (1.0 - f) * sharp
    return color.to_uint8(near), color.to_uint8(far)


def procedural_mask(height: int, width: int, seed: int) -> np.ndarray:
    """A seeded blob-shaped binary map (uint8 0/1) standing in for a missing foreground map.

    Low-pass filtered white noise (σ = min(H, W)/8, so one to a few smooth, irregular regions, like
    segmented objects) thresholded at a random quantile, giving 25–75 % foreground.  Deterministic
    in ``seed``; every image gets its own seed from its name (see :func:`name_seed`).
    """
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.standard_normal((height, width)), sigma=max(min(height, width) / 8.0, 1.0),
                            mode="wrap")
    return (noise > np.quantile(noise, rng.uniform(0.25, 0.75))).astype(np.uint8)


def name_seed(seed: int, name: str) -> int:
    """Per-image seed from the run seed and the image's name: adding images changes no other map."""
    return (seed * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**32)


def read_mask(path: Path) -> np.ndarray:
    """A decision map as 0/1: maps holding only 0/1 are taken as is, others thresholded at 128
    (robust to 0/255 maps saved as JPEG)."""
    grey = read_image(path, "grey", depth=8)
    return (grey > 0).astype(np.uint8) if grey.max() <= 1 else (grey >= 128).astype(np.uint8)


def read_voc_mask(path: Path) -> np.ndarray:
    """VOC ``SegmentationClass`` palette PNG → 0/1; every index ≠ 0 is foreground, the 255 "void"
    band included (MFIF-GAN's VOC convention, so the two methods' substitute sets agree)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode != "P":
            raise InputImageError(f"{path}: expected a palette (class-index) PNG, got mode {im.mode}")
        return (np.asarray(im) != 0).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------
@dataclass
class SharpSource:
    """One all-in-focus image and where its decision map comes from (a path, or None = procedural)."""

    name: str
    image: Path
    mask: Path | None
    voc: bool = False

    def load(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(self.image, depth=8)
        if self.mask is None:
            mask = procedural_mask(*image.shape[:2], name_seed(seed, self.name))
        else:
            mask = read_voc_mask(self.mask) if self.voc else read_mask(self.mask)
            check_same_size([image[..., 0] if image.ndim == 3 else image, mask], [str(self.image), str(self.mask)])
        return image, mask


def folder_sources(images: str, masks: str | None) -> list[SharpSource]:
    """``images/NAME.ext`` with ``masks/NAME.<any image suffix>``; every image needs a map when
    ``masks`` is given (a misnamed file is an error, not a silently procedural map)."""
    paths = list_images(images)
    if masks is None:
        return [SharpSource(p.stem, p, None) for p in paths]
    found = {p.stem: p for p in list_images(masks)}
    missing = [p.name for p in paths if p.stem not in found]
    if missing:
        raise InputImageError(f"no decision map in {masks} for {missing[0]} ({len(missing)} image(s) without one)")
    return [SharpSource(p.stem, p, found[p.stem]) for p in paths]


def voc_sources(root: str) -> list[SharpSource]:
    """PASCAL VOC 2012: every ``JPEGImages/<id>.jpg`` that has ``SegmentationClass/<id>.png``."""
    root_path = Path(root)
    for sub in ("JPEGImages", "SegmentationClass"):
        if not (root_path / sub).is_dir():
            raise InputImageError(f"{root}: no {sub}/ folder (expected VOC2012's layout)")
    masks = sorted((root_path / "SegmentationClass").glob("*.png"), key=natural_key)
    out = []
    for m in masks:
        img = root_path / "JPEGImages" / f"{m.stem}.jpg"
        if not img.is_file():
            raise InputImageError(f"{img} missing for {m.name}")
        out.append(SharpSource(m.stem, img, m, voc=True))
    if not out:
        raise InputImageError(f"{root}/SegmentationClass holds no PNG maps")
    return out


def split_sources(sources: list[SharpSource], train_fraction: float, train_count: int | None,
                  seed: int) -> tuple[list[SharpSource], list[SharpSource]]:
    """Random train/test split ("90 pairs … selected randomly"), seeded; both keep natural order."""
    n = len(sources)
    k = train_count if train_count is not None else int(round(train_fraction * n))
    if not 1 <= k <= n:
        raise InputImageError(f"cannot take {k} training images from {n}")
    chosen = set(np.random.default_rng(seed).permutation(n)[:k].tolist())
    train = [s for i, s in enumerate(sources) if i in chosen]
    test = [s for i, s in enumerate(sources) if i not in chosen]
    return train, test


def build_triplet(source: SharpSource, sigma: float, seed: int) -> dict[str, np.ndarray]:
    """{near, far, gt} uint8 images (colour stays colour) for one sharp source."""
    image, mask = source.load(seed)
    near, far = synthesize_pair(image, mask, sigma)
    return {"near": near, "far": far, "gt": image, "mask": mask}


# ----------------------------------------------------------------------------------------------
# Command
# ----------------------------------------------------------------------------------------------
def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder of all-in-focus (sharp) images")
    src.add_argument("--voc", metavar="VOC2012", help="PASCAL VOC 2012 root (JPEGImages/, SegmentationClass/)")
    parser.add_argument("--masks", help="with --images: folder of binary decision maps named like the images "
                                        "(white/1 = foreground); without it, maps are generated (seeded)")
    parser.add_argument("-o", "--out", "--output", dest="out", required=True, help="output store (.h5, indexed layout: near, far, gt)")
    parser.add_argument("--sigma", type=float, default=DEFAULT_SIGMA,
                        help="Gaussian blur σ of Eqs. 18–19 (paper: not given; default 2)")
    parser.add_argument("--patch", type=int, default=80)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--train-fraction", type=float, default=0.75,
                        help="share of images used for training (paper: 90 of 120)")
    parser.add_argument("--train-count", type=int, help="exact number of training images (overrides the fraction)")
    parser.add_argument("--seed", type=int, default=0, help="split and procedural maps")
    parser.add_argument("--luma", choices=("studio", "pil"), default="studio",
                        help="grey plane of colour images (default: studio-swing Y, the network's input)")
    parser.add_argument("--export", metavar="DIR",
                        help="also write the synthesised images: DIR/{train,test}/{near,far,gt,mask}/NAME.png")


def prepare(args) -> int:
    if args.masks and not args.images:
        raise InputImageError("--masks needs --images")
    if not str(args.out).endswith(".h5"):
        raise InputImageError("--out must be a .h5 file (indexed store)")
    if args.sigma <= 0:
        raise InputImageError("--sigma must be positive")
    check_positive(patch=args.patch, stride=args.stride)
    sources = voc_sources(args.voc) if args.voc else folder_sources(args.images, args.masks)
    train, test = split_sources(sources, args.train_fraction, args.train_count, args.seed)
    triplets = []
    for split, group in (("train", train), ("test", test)):
        for s in group:
            t = build_triplet(s, args.sigma, args.seed)
            if split == "train":
                triplets.append(tuple(training_luma(t[k], args.luma) for k in SOURCES))
            if args.export:
                for k, img in t.items():
                    write_image(Path(args.export) / split / k / f"{s.name}.png", img * 255 if k == "mask" else img)
    mask_source = "voc" if args.voc else ("folder" if args.masks else "procedural")
    attrs = {"model": "gipcgan", "train": [s.name for s in train], "test": [s.name for s in test],
             "sigma": args.sigma, "blur": "imgaussfilt-replicate", "masks": mask_source, "seed": args.seed,
             "luma": args.luma}
    n = write_indexed_layout(args.out, triplets, args.patch, args.stride, names=SOURCES, attrs=attrs)
    print(f"wrote {n} (near, far, gt) patches of {args.patch}×{args.patch} (stride {args.stride}) from "
          f"{len(train)} training images ({len(test)} held out; maps: {mask_source}; σ {args.sigma}) to {args.out}")
    return 0

