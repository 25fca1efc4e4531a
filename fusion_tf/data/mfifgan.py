"""MFIF-GAN training data: α-matte pair synthesis, the HDF5 store of 256×256 triplets, and tf.data.

Facts: ``../shared/spec/mfif_gan.md`` §5.  ``fusion-tf prepare mfifgan`` does, per source image, what
the original did in three places:

1. focus map F = segmentation ≠ 0 (VOC "void" band included) — :func:`fusion_tf.data.sources.voc_samples`;
2. pair synthesis (MATLAB ``data_generation.m``, σ 1): ``BI = imgaussfilt(I, 1)`` on uint8 (5×5 kernel,
   replicate padding, rounded to uint8), ``Bm = imgaussfilt(255·M, 1)/255``;
   ``I_A = I·M + BI·(1−M)`` (sharp foreground) and ``I_B = BI·Bm + I·(1−Bm)`` (blurred foreground whose
   blur spreads past the object edge: the defocus-spread effect); written as JPEG quality 75;
3. the loader transform: ``CenterCrop(178)`` → ``Resize(256)`` (PIL bilinear) for A, B and the map.

The result is stored once as uint8 (``a``, ``b``: N×256×256×3; ``map``: N×256×256) so training does no
image work.  Options (named, faithful default first): ``synthesis`` = ``code`` | ``conventional`` (Eq. 12,
no defocus spread: I_B = BI·M + I·(1−M) — the paper's "na" ablation) | ``paper`` (Eq. 10–11);
``jpeg`` = True (q75 round trip as the original saved A/B) | False.
"""

from __future__ import annotations

import argparse
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf

from fusion_tf.core.imageio import atomic_path
from fusion_tf.core.ops import imgaussfilt_kernel
from fusion_tf.data.patches import check_positive, open_store_file
from fusion_tf.errors import InputImageError, StoreError
from fusion_tf.objectives.mfifgan import map_from_uint8

SYNTHESES = ("code", "conventional", "paper")
STORE_FORMAT = "fusion_tf.mfifgan_store"
STORE_VERSION = 1
SIGMA, CROP, SIZE, JPEG_QUALITY = 1.0, 178, 256, 75


# ----------------------------------------------------------------------------------------------
# Synthesis (NumPy, MATLAB semantics)
# ----------------------------------------------------------------------------------------------
def _round_half_up(x: np.ndarray) -> np.ndarray:
    """MATLAB's uint8 conversion of non-negative values: round half away from zero, saturate."""
    return np.clip(np.floor(np.asarray(x, np.float64) + 0.5), 0, 255).astype(np.uint8)


def gaussian_blur(x: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """``imgaussfilt`` on a float array (H×W or H×W×C): kernel 2⌈2σ⌉+1, replicate padding, per channel."""
    from scipy.ndimage import correlate

    k = imgaussfilt_kernel(sigma)
    x = np.asarray(x, np.float64)
    if x.ndim == 2:
        return correlate(x, k, mode="nearest")
    return np.stack([correlate(x[..., c], k, mode="nearest") for c in range(x.shape[-1])], axis=-1)


def imgaussfilt_uint8(x: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """``imgaussfilt`` on a uint8 image: the result is rounded back to uint8, as MATLAB returns it."""
    return _round_half_up(gaussian_blur(x, sigma))


def synthesize_pair(image: np.ndarray, mask: np.ndarray, synthesis: str = "code",
                    sigma: float = SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """``(I_A, I_B)`` uint8 from an RGB uint8 image and a 0/1 mask (MATLAB ``imwrite`` rounding).

    ``code``: I_A = I·M + BI·(1−M), I_B = BI·Bm + I·(1−Bm).  ``conventional``: I_B = BI·M + I·(1−M).
    ``paper``: Eq. (10) I_A = M·I + (1−M)·G⊗[(1−M)·I]; Eq. (11) I_B = G⊗(M·I) + (1−G⊗M)·[(1−M)·I]
    (G⊗ on floats, no intermediate rounding — the paper gives no implementation).
    """
    if synthesis not in SYNTHESES:
        raise ValueError(f"synthesis must be one of {SYNTHESES}, got {synthesis!r}")
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise InputImageError(f"synthesis needs an H×W×3 uint8 image, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise InputImageError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    m = (np.asarray(mask) != 0).astype(np.float64)[..., None]
    i = image.astype(np.float64) / 255.0
    if synthesis == "paper":
        a = m * i + (1 - m) * gaussian_blur((1 - m) * i, sigma)
        b = gaussian_blur(m * i, sigma) + (1 - gaussian_blur(m, sigma)) * ((1 - m) * i)
        return _round_half_up(a * 255.0), _round_half_up(b * 255.0)
    bi = imgaussfilt_uint8(image, sigma).astype(np.float64) / 255.0
    a = i * m + bi * (1 - m)
    if synthesis == "code":
        bm = imgaussfilt_uint8((m[..., 0] * 255).astype(np.uint8), sigma).astype(np.float64)[..., None] / 255.0
        b = bi * bm + i * (1 - bm)
    else:
        b = bi * m + i * (1 - m)
    return _round_half_up(a * 255.0), _round_half_up(b * 255.0)


def jpeg_round_trip(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Encode/decode with Pillow at ``quality`` (the original saved A and B as JPEG q75 and trained on those)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


def center_crop(x: np.ndarray, size: int) -> np.ndarray:
    """torchvision ``CenterCrop``: zero-pad if smaller, offset ``int(round((H−size)/2))`` (banker's)."""
    h, w = x.shape[:2]
    if h < size or w < size:
        ph, pw = max(size - h, 0), max(size - w, 0)
        pad = [(ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2)] + [(0, 0)] * (x.ndim - 2)
        x = np.pad(x, pad)
        h, w = x.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[top : top + size, left : left + size]


def crop_resize(x: np.ndarray, crop: int = CROP, size: int = SIZE) -> np.ndarray:
    """``CenterCrop(crop)`` → ``Resize(size)`` with PIL bilinear on uint8 (grey or RGB)."""
    from PIL import Image

    x = center_crop(x, crop)
    if crop == size:
        return np.ascontiguousarray(x)
    return np.asarray(Image.fromarray(x).resize((size, size), Image.BILINEAR), np.uint8)


def make_triplet(image: np.ndarray, mask: np.ndarray, synthesis: str = "code", sigma: float = SIGMA,
                 jpeg: bool = True, crop: int = CROP, size: int = SIZE):
    """Full-size synthesis → (JPEG q75) → crop/resize: ``(a, b, map)`` uint8 as training sees them."""
    a, b = synthesize_pair(image, mask, synthesis, sigma)
    if jpeg:
        a, b = jpeg_round_trip(a), jpeg_round_trip(b)
    focus = ((np.asarray(mask) != 0) * 255).astype(np.uint8)
    return crop_resize(a, crop, size), crop_resize(b, crop, size), crop_resize(focus, crop, size)


# ----------------------------------------------------------------------------------------------
# Store
# ----------------------------------------------------------------------------------------------
@dataclass
class MFIFGANStore:
    path: Path
    count: int
    size: int
    attrs: dict


def write_store(path, a: np.ndarray, b: np.ndarray, maps: np.ndarray, ids: list[str], attrs: dict) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("a", data=a, chunks=(1,) + a.shape[1:])
            f.create_dataset("b", data=b, chunks=(1,) + b.shape[1:])
            f.create_dataset("map", data=maps, chunks=(1,) + maps.shape[1:])
            f.create_dataset("id", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
            f.attrs["format"], f.attrs["version"] = STORE_FORMAT, STORE_VERSION
            for k, v in attrs.items():
                f.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v)
    return path


def open_store(path) -> MFIFGANStore:
    """Validate an MFIF-GAN store; a one-line ``StoreError`` otherwise."""
    path = Path(path)
    with open_store_file(path, "MFIF-GAN", ("a", "b", "map"), "mfifgan") as f:
        a, b, m = f["a"], f["b"], f["map"]
        if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or a.shape[1] != a.shape[2]:
            raise StoreError(f"{path}: 'a' must be (N, S, S, 3) uint8, got {a.shape} {a.dtype}")
        if b.shape != a.shape or b.dtype != np.uint8 or m.shape != a.shape[:3] or m.dtype != np.uint8:
            raise StoreError(f"{path}: 'b' {b.shape} / 'map' {m.shape} do not match 'a' {a.shape}")
        count, size, attrs = int(a.shape[0]), int(a.shape[1]), dict(f.attrs)
    if count < 1:
        raise StoreError(f"{path}: the store is empty")
    return MFIFGANStore(path, count, size, attrs)


def steps_per_epoch(store: MFIFGANStore, batch_size: int, drop_remainder: bool = False) -> int:
    """Batches per epoch; the original keeps the last smaller batch (2,913 / 2 → 1,457)."""
    return store.count // batch_size if drop_remainder else math.ceil(store.count / batch_size)


def epoch_order(count: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Sample order of one epoch: a function of (seed, epoch) only, so a resumed run sees the same batches."""
    return np.random.RandomState([seed, epoch]).permutation(count) if shuffle else np.arange(count)


def train_dataset(store: MFIFGANStore, batch_size: int, epoch: int = 0, seed: int = 0, skip_batches: int = 0,
                  gt_range: str = "code", shuffle: bool = True, drop_remainder: bool = False) -> tf.data.Dataset:
    """One epoch of batches ``{"a", "b": (B,S,S,3) in [−1,1], "map": (B,S,S,1) in the gt range}``.

    Rows are read with h5py in a generator (a 2,913-triplet store is 1.3 GB: too big for graph
    constants; the model step takes seconds, so reading speed does not matter).
    """
    order = epoch_order(store.count, seed, epoch, shuffle)
    if drop_remainder:
        order = order[: (len(order) // batch_size) * batch_size]
    order = order[skip_batches * batch_size :]

    def rows():
        with h5py.File(store.path, "r") as f:
            a, b, m = f["a"], f["b"], f["map"]
            for i in order:
                yield a[int(i)], b[int(i)], m[int(i)]

    s = store.size
    sig = (tf.TensorSpec((s, s, 3), tf.uint8), tf.TensorSpec((s, s, 3), tf.uint8), tf.TensorSpec((s, s), tf.uint8))
    ds = tf.data.Dataset.from_generator(rows, output_signature=sig)

    def norm(a, b, m):
        img = lambda x: (tf.cast(x, tf.float32) / 255.0 - 0.5) / 0.5  # noqa: E731 — (x/255 − 0.5)/0.5 as coded
        return {"a": img(a), "b": img(b), "map": map_from_uint8(m, gt_range)[..., None]}

    return ds.batch(batch_size, drop_remainder=drop_remainder).map(norm).prefetch(2)


# ----------------------------------------------------------------------------------------------
# `fusion-tf prepare mfifgan`
# ----------------------------------------------------------------------------------------------
def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--voc", metavar="ROOT",
                     help="PASCAL VOC 2012 folder with JPEGImages/ and SegmentationClass/ (palette PNGs; every "
                          "class index ≠ 0, void included, is foreground) — the original's 2,913 images")
    src.add_argument("--images", metavar="DIR", help="plain image folder; masks from --masks (same file stem, non-zero = object)")
    parser.add_argument("--masks", metavar="DIR", help="mask folder for --images")
    parser.add_argument("-o", "--output", "--out", dest="output", required=True, help="HDF5 store to write (e.g. data/mfifgan_voc.h5)")
    parser.add_argument("--synthesis", choices=SYNTHESES, default="code",
                        help="code (default: defocus-spread I_B as coded), conventional (Eq. 12, no spread; the "
                             "paper's ablation) or paper (Eq. 10–11)")
    parser.add_argument("--sigma", type=float, default=SIGMA, help="Gaussian σ of the synthetic defocus (1)")
    parser.add_argument("--no-jpeg", action="store_true", help="skip the q75 JPEG round trip of A and B (original: JPEG)")
    parser.add_argument("--crop", type=int, default=CROP, help="centre crop before resizing (178)")
    parser.add_argument("--size", type=int, default=SIZE, help="stored/training size (256)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N samples")


def prepare(args: argparse.Namespace) -> int:
    from fusion_tf.core.imageio import read_image
    from fusion_tf.data import sources

    check_positive(crop=args.crop, size=args.size, **({} if args.limit is None else {"limit": args.limit}))
    if args.voc:
        samples = sources.voc_samples(args.voc)
        source = {"kind": "voc2012", "root": str(args.voc)}
    else:
        if not args.masks:
            raise InputImageError("--images needs --masks (a folder of masks with the same file stems)")
        samples = sources.folder_samples(args.images, args.masks)
        source = {"kind": "folder", "images": str(args.images), "masks": str(args.masks)}
    a_all, b_all, m_all, ids = [], [], [], []
    for sample in samples:
        image = read_image(sample.image_path, "rgb", depth=8)
        if image.shape[:2] != sample.mask.shape:
            raise InputImageError(f"{sample.image_path}: mask is {sample.mask.shape}, image {image.shape[:2]}")
        a, b, m = make_triplet(image, sample.mask, args.synthesis, args.sigma, not args.no_jpeg, args.crop, args.size)
        a_all.append(a), b_all.append(b), m_all.append(m), ids.append(sample.sample_id)
        if args.limit and len(ids) >= args.limit:
            break
    if not ids:
        raise InputImageError("no usable samples found")
    recipe = {"synthesis": args.synthesis, "sigma": args.sigma, "jpeg_quality": None if args.no_jpeg else JPEG_QUALITY,
              "crop": args.crop, "size": args.size, "mask_rule": "index != 0 (void included)"}
    write_store(args.output, np.stack(a_all), np.stack(b_all), np.stack(m_all), ids,
                {"source": source, "recipe": recipe})
    print(f"wrote {args.output}: {len(ids)} triplets of {args.size}×{args.size} ({args.synthesis} synthesis, σ {args.sigma})")
    return 0
