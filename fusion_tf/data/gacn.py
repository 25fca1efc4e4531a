"""GACN training data: the HDF5 store, the loader augmentation (tf.data) and the in-step pair synthesis.

Facts: ``../shared/spec/gacn.md`` §4.  Three layers, as in the original:

1. ``prepare`` (once): OpenCV grey image and binary object mask, /255, bilinear resize to 256×256,
   stored as uint8 (the resized float values rounded to 8 bits) with a seeded 7:3 train/val split.
2. Loader (``tf.data``, per sample): random 156 crop → h-flip → v-flip → rotation by k·30° (nearest,
   corners 0) — train only; then the mask threshold (< 0.5 → 0, > 0.5 → 1).  Augmentation seeds are
   derived statelessly from (seed, epoch, position), so a resumed epoch sees the same samples.
3. Step (``tf.function``, per batch, :func:`synthesize_batch`): blur pair synthesis with one random
   radius per batch, random offset with the original's off-by-one border, shared Gaussian noise and a
   random img1/img2 swap, all drawn from a ``tf.random.Generator`` (never NumPy inside the graph).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf

from fusion_tf.core import ops
from fusion_tf.core.imageio import atomic_path
from fusion_tf.data.patches import check_positive, open_store_file
from fusion_tf.errors import InputImageError, StoreError

IMAGE_SIZE = 256
CROP_SIZE = 156
ROTATION_STEP_DEG = 30.0
BLUR_SIGMA = 2.0
MAX_BLUR_RADIUS = 7
MATTE_SIGMA, MATTE_RADIUS = 8.0, 45
OFFSET = 2
MAX_NOISE_STD = 0.1
NOISE_WEIGHT = 0.05
VAL_RADIUS_SEED, VAL_RADIUS_COUNT = 1, 109
STORE_FORMAT = "fusion_tf.gacn_store"
STORE_VERSION = 1
SPLIT_TRAIN, SPLIT_VAL = 0, 1


def _gauss_1d(radius: int, sigma: float, width: int) -> np.ndarray:
    """Normalised 1-D Gaussian centred in ``width`` taps (zeros outside the radius).

    Its outer product is exactly the original's normalised (2r+1)² kernel, and zero taps add nothing
    under zero padding, so one fixed-width kernel can stand for every radius in a graph.
    """
    ax = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(ax**2) / (2.0 * sigma * sigma))
    out = np.zeros(width, np.float64)
    c = width // 2
    out[c - radius : c + radius + 1] = g / g.sum()
    return out


#: row r-1 holds the σ 2 kernel of radius r, padded to 15 taps
_BLUR_KERNELS = np.stack([_gauss_1d(r, BLUR_SIGMA, 2 * MAX_BLUR_RADIUS + 1) for r in range(1, MAX_BLUR_RADIUS + 1)]).astype(np.float32)
_MATTE_KERNEL = _gauss_1d(MATTE_RADIUS, MATTE_SIGMA, 2 * MATTE_RADIUS + 1).astype(np.float32)


def _separable_blur(x: tf.Tensor, k1d: tf.Tensor) -> tf.Tensor:
    k1d = tf.convert_to_tensor(k1d, tf.float32)
    return ops.filter2d(ops.filter2d(x, k1d[None, :], "zero"), k1d[:, None], "zero")


# ----------------------------------------------------------------------------------------------
# In-step synthesis (TF)
# ----------------------------------------------------------------------------------------------
def blur_pair(image: tf.Tensor, mask: tf.Tensor, radius) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The original ``random_blurred`` for a given radius: ``(A, B, soft matte)``.

    A = foreground blurred (soft σ 8 matte spreading outward), B = background blurred (hard edge);
    Gaussian σ 2 with a (2r+1)² kernel; every blur zero-padded, so images darken at the borders.
    """
    radius = tf.convert_to_tensor(radius, tf.int32)
    blurred = _separable_blur(image, tf.gather(_BLUR_KERNELS, radius - 1))
    hard = tf.cast(tf.not_equal(mask, 0.0), image.dtype)
    soft = _separable_blur(hard, _MATTE_KERNEL)
    a = image * (1.0 - soft) + soft * blurred
    b = image * hard + (1.0 - hard) * blurred
    return a, b, soft


def shift_with_lost_border(x: tf.Tensor, dy: tf.Tensor, dx: tf.Tensor, max_offset: int = OFFSET) -> tf.Tensor:
    """Per-sample integer shift by (dy, dx) ∈ [−max_offset, max_offset]² (zero fill) that also zeroes
    the last row and column.

    The original slices ``[..., :-1]`` on both sides of its assignment, so the shifted image loses its
    last row/column even for a (0, 0) offset — reproduced on purpose.  Built from static shifts
    selected per sample by 0/1 weights (exact), because XLA has no kernel for image transforms.
    """
    def along(t, d, rows):
        out = tf.zeros_like(t)
        for k in range(-max_offset, max_offset + 1):
            sel = tf.cast(tf.equal(d, k), t.dtype)[:, None, None, None]
            out += sel * (ops.shift_zero_fill(t, k, 0) if rows else ops.shift_zero_fill(t, 0, k))
        return out

    moved = along(along(x, dy, True), dx, False)
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    keep = tf.cast(tf.range(h) < h - 1, x.dtype)[:, None] * tf.cast(tf.range(w) < w - 1, x.dtype)[None, :]
    return moved * keep[None, :, :, None]


def random_offset(a: tf.Tensor, b: tf.Tensor, rng: tf.random.Generator, max_offset: int = OFFSET):
    """Per sample with p 0.5: shift one of A/B (p 0.5 each) by dx, dy ~ U{−2..2} (misregistration)."""
    n = tf.shape(a)[0]
    apply = rng.uniform([n]) < 0.5
    shift_a = rng.uniform([n]) < 0.5
    dy = rng.uniform([n], -max_offset, max_offset + 1, dtype=tf.int32)
    dx = rng.uniform([n], -max_offset, max_offset + 1, dtype=tf.int32)
    sel_a = tf.logical_and(apply, shift_a)[:, None, None, None]
    sel_b = tf.logical_and(apply, tf.logical_not(shift_a))[:, None, None, None]
    a = tf.where(sel_a, shift_with_lost_border(a, dy, dx), a)
    b = tf.where(sel_b, shift_with_lost_border(b, dy, dx), b)
    return a, b


def add_shared_noise(a: tf.Tensor, b: tf.Tensor, rng: tf.random.Generator, max_std: float = MAX_NOISE_STD):
    """One noise field n ~ N(0, std²), std ~ U(0, 0.1) per batch, mixed in as 0.95·I + 0.05·n."""
    std = rng.uniform([], 0.0, max_std)
    noise = rng.normal(tf.shape(a)) * std
    return (1.0 - NOISE_WEIGHT) * a + NOISE_WEIGHT * noise, (1.0 - NOISE_WEIGHT) * b + NOISE_WEIGHT * noise


def synthesize_batch(image: tf.Tensor, mask: tf.Tensor, rng: tf.random.Generator):
    """Training pair from a loader batch: ``(img1, img2, gt)`` in the order the model and loss use.

    Radius one per batch; offset; shared noise; swap with p 0.5 → (B, A, mask), else (A, B, 1 − mask).
    """
    radius = rng.uniform([], 1, MAX_BLUR_RADIUS + 1, dtype=tf.int32)
    a, b, _ = blur_pair(image, mask, radius)
    a, b = random_offset(a, b, rng)
    a, b = add_shared_noise(a, b, rng)
    swap = rng.uniform([]) < 0.5
    img1, img2 = tf.where(swap, b, a), tf.where(swap, a, b)
    gt = tf.where(swap, mask, 1.0 - mask)
    return img1, img2, gt


def validation_radii(count: int = VAL_RADIUS_COUNT) -> np.ndarray:
    """Fixed blur radius per validation batch: legacy ``np.random.seed(1); randint(1, 8, 109)``."""
    return np.random.RandomState(VAL_RADIUS_SEED).randint(1, MAX_BLUR_RADIUS + 1, count)


def synthesize_validation(image: tf.Tensor, mask: tf.Tensor, radius):
    """Validation pair: blur only, called as (img1 = B, img2 = A) with GT = mask."""
    a, b, _ = blur_pair(image, mask, radius)
    return b, a, mask


# ----------------------------------------------------------------------------------------------
# Loader augmentation (tf.data, stateless)
# ----------------------------------------------------------------------------------------------
def threshold_mask(mask: tf.Tensor) -> tf.Tensor:
    """< 0.5 → 0, > 0.5 → 1; exactly 0.5 stays (as coded)."""
    mask = tf.where(mask < 0.5, tf.zeros_like(mask), mask)
    return tf.where(mask > 0.5, tf.ones_like(mask), mask)


def rotate_nearest(x: tf.Tensor, angle_rad: tf.Tensor) -> tf.Tensor:
    """Rotate an HWC image about its centre, nearest neighbour, same size, corners filled with 0."""
    h = tf.cast(tf.shape(x)[0], tf.float32)
    w = tf.cast(tf.shape(x)[1], tf.float32)
    cy, cx = (h - 1.0) / 2.0, (w - 1.0) / 2.0
    c, s = tf.cos(angle_rad), tf.sin(angle_rad)
    # inverse map: input = R(−θ)·(output − centre) + centre
    transform = tf.stack([c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy, 0.0, 0.0])[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=x[None], transforms=transform, output_shape=tf.shape(x)[:2], fill_value=0.0,
        interpolation="NEAREST", fill_mode="CONSTANT",
    )
    return out[0]


def augment_train(image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, crop: int = CROP_SIZE):
    """Random crop → h-flip → v-flip → k·30° rotation, one window for image and mask (stacked)."""
    both = tf.stack([image, mask], axis=-1)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    both = tf.image.stateless_random_crop(both, [crop, crop, 2], seeds[0])
    both = tf.image.stateless_random_flip_left_right(both, seeds[1])
    both = tf.image.stateless_random_flip_up_down(both, seeds[2])
    k = tf.random.stateless_uniform([], seeds[3], 0, 12, dtype=tf.int32)
    both = rotate_nearest(both, tf.cast(k, tf.float32) * (ROTATION_STEP_DEG * np.pi / 180.0))
    return both[..., :1], both[..., 1:]


# ----------------------------------------------------------------------------------------------
# HDF5 store
# ----------------------------------------------------------------------------------------------
def resize_to_store(grey: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """/255, bilinear resize (OpenCV, as the original loader) and back to uint8 for storage."""
    import cv2

    x = cv2.resize(grey.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def split_indices(count: int, seed: int, train_fraction: float = 0.7) -> np.ndarray:
    """Seeded 7:3 split → per-sample split code (0 train, 1 val); 5,786 → 4,050 / 1,736."""
    order = np.random.RandomState(seed).permutation(count)
    split = np.full(count, SPLIT_VAL, np.uint8)
    split[order[: int(count * train_fraction)]] = SPLIT_TRAIN
    return split


def write_store(path: str | os.PathLike, images: np.ndarray, masks: np.ndarray, ids: list[str],
                split: np.ndarray, attrs: dict) -> Path:
    """Write the store atomically: ``image``/``mask`` (N,256,256) uint8, ``split`` (N,), ``id`` (N,)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            chunks = (1,) + images.shape[1:]
            f.create_dataset("image", data=images, chunks=chunks)
            f.create_dataset("mask", data=masks, chunks=chunks)
            f.create_dataset("split", data=split)
            f.create_dataset("id", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
            f.attrs["format"] = STORE_FORMAT
            f.attrs["version"] = STORE_VERSION
            for k, v in attrs.items():
                f.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v)
    return path


@dataclass
class GACNStore:
    """An opened store: path, per-split row indices and the recorded attributes."""

    path: Path
    train: np.ndarray
    val: np.ndarray
    attrs: dict
    size: int


def open_store(path: str | os.PathLike, crop: int = CROP_SIZE) -> GACNStore:
    """Validate a GACN store and return its split indices; a clear ``StoreError`` otherwise."""
    path = Path(path)
    with open_store_file(path, "GACN", ("image", "mask", "split"), "gacn") as f:
        image, mask, split = f["image"], f["mask"], f["split"]
        if image.ndim != 3 or image.dtype != np.uint8 or image.shape[1] != image.shape[2]:
            raise StoreError(f"{path}: 'image' must be (N, S, S) uint8, got {image.shape} {image.dtype}")
        if mask.shape != image.shape or mask.dtype != np.uint8:
            raise StoreError(f"{path}: 'mask' must match 'image' {image.shape} uint8, got {mask.shape} {mask.dtype}")
        if split.shape != (image.shape[0],):
            raise StoreError(f"{path}: 'split' must have shape ({image.shape[0]},), got {split.shape}")
        codes = split[()]
        attrs = dict(f.attrs)
        size = int(image.shape[1])
    if size < crop:
        raise StoreError(f"{path}: images are {size}² but training crops {crop}²")
    return GACNStore(path, np.flatnonzero(codes == SPLIT_TRAIN), np.flatnonzero(codes == SPLIT_VAL), attrs, size)


def _rows(store: GACNStore, indices: np.ndarray):
    def gen():
        with h5py.File(store.path, "r") as f:
            image, mask = f["image"], f["mask"]
            for i in indices:
                yield image[int(i)], mask[int(i)]

    spec = tf.TensorSpec([store.size, store.size], tf.uint8)
    return tf.data.Dataset.from_generator(gen, output_signature=(spec, spec))


def train_dataset(store: GACNStore, batch_size: int, epoch: int, seed: int, skip_batches: int = 0,
                  crop: int = CROP_SIZE, drop_remainder: bool = False) -> tf.data.Dataset:
    """One shuffled, augmented epoch: batches ``(image, mask)`` float32 (B, crop, crop, 1).

    Order and augmentation depend only on (seed, epoch), so resuming mid-epoch (``skip_batches``)
    reproduces the rest of the interrupted epoch.  The last partial batch is kept (254 steps/epoch).
    """
    order = np.random.RandomState([seed, epoch]).permutation(store.train)
    order = order[skip_batches * batch_size:]
    ds = tf.data.Dataset.zip(_rows(store, order), tf.data.Dataset.range(skip_batches * batch_size, len(store.train)))

    def load(row, position):
        image, mask = row
        sample_seed = tf.stack([tf.constant(seed, tf.int64) * 1_000_003 + epoch, position])
        img = tf.cast(image, tf.float32) / 255.0
        msk = tf.cast(mask, tf.float32) / 255.0
        img, msk = augment_train(img, msk, sample_seed, crop)
        return img, threshold_mask(msk)

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(2)


def val_dataset(store: GACNStore, batch_size: int) -> tf.data.Dataset:
    """Validation in store order, full size, no augmentation: ``(image, mask, radius)`` per batch."""
    radii = validation_radii(max(VAL_RADIUS_COUNT, -(-len(store.val) // batch_size)))

    def load(image, mask):
        return tf.cast(image, tf.float32)[..., None] / 255.0, threshold_mask(tf.cast(mask, tf.float32)[..., None] / 255.0)

    ds = _rows(store, store.val).map(load).batch(batch_size)
    radius_ds = tf.data.Dataset.from_tensor_slices(radii.astype(np.int32))
    return tf.data.Dataset.zip(ds, radius_ds).map(lambda b, r: (b[0], b[1], r)).prefetch(2)


# ----------------------------------------------------------------------------------------------
# `fusion-tf prepare gacn`
# ----------------------------------------------------------------------------------------------
def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``fusion-tf prepare gacn``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--coco", metavar="ROOT",
                     help="COCO 2014 style folder: annotations/instances_*.json + train2014/, val2014/ images "
                          "(or one instances_*.json file); keeps one-object images of 20k–170k px")
    src.add_argument("--images", metavar="DIR",
                     help="plain folder of images; masks come from --masks, matched by file stem "
                          "(IMG_7.jpg ↔ IMG_7.png); non-zero mask pixels are the object")
    parser.add_argument("--masks", metavar="DIR", help="mask folder for --images")
    parser.add_argument("-o", "--output", "--out", dest="output", required=True, help="HDF5 store to write (e.g. data/gacn_coco.h5)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the 7:3 train/val split (default 1)")
    parser.add_argument("--min-area", type=float, default=20_000, help="COCO: smallest object area in px")
    parser.add_argument("--max-area", type=float, default=170_000, help="COCO: largest object area in px")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N selected samples")


def prepare(args: argparse.Namespace) -> int:
    """Build the GACN store from COCO or a folder; prints a one-line summary and returns 0."""
    import cv2

    from fusion_tf.data import sources

    if args.limit is not None:
        check_positive(limit=args.limit)
    if args.coco:
        samples = sources.coco_single_object_samples(args.coco, args.min_area, args.max_area)
        source = {"kind": "coco", "root": str(args.coco), "min_area": args.min_area, "max_area": args.max_area}
    else:
        if not args.masks:
            raise InputImageError("--images needs --masks (a folder of masks with the same file stems)")
        samples = sources.folder_samples(args.images, args.masks)
        source = {"kind": "folder", "images": str(args.images), "masks": str(args.masks)}
    images, masks, ids = [], [], []
    for sample in samples:
        grey = cv2.imread(str(sample.image_path), cv2.IMREAD_GRAYSCALE)  # OpenCV rule, as the original
        if grey is None:
            raise InputImageError(f"cannot read image {sample.image_path}")
        if grey.shape != sample.mask.shape:
            raise InputImageError(f"{sample.image_path}: mask is {sample.mask.shape}, image {grey.shape}")
        images.append(resize_to_store(grey))
        masks.append(resize_to_store(sample.mask * np.uint8(255)))
        ids.append(sample.sample_id)
        if args.limit and len(ids) >= args.limit:
            break
    if len(ids) < 2:
        raise InputImageError(f"only {len(ids)} usable samples found; need at least 2 for a train/val split")
    split = split_indices(len(ids), args.seed)
    recipe = {"image_size": IMAGE_SIZE, "grey": "opencv imread(0)", "resize": "bilinear on /255 floats, stored rounded",
              "split": "7:3", "seed": args.seed}
    write_store(args.output, np.stack(images), np.stack(masks), ids, split, {"source": source, "recipe": recipe})
    n_train = int(np.sum(split == SPLIT_TRAIN))
    print(f"wrote {args.output}: {len(ids)} samples ({n_train} train / {len(ids) - n_train} val)")
    return 0
