"""What every model's inference front end returns, so the CLI, evaluation and export treat them alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from fusion_tf.errors import InputImageError


@dataclass
class FusionResult:
    """Result of fusing one group of source images.

    fused         uint8 or uint16 (the sources' depth), H×W (grey sources) or H×W×3 (colour sources).
    raw           float32 — the network's own output for the (last) pair, before any de-normalisation,
                  stretching or rounding (what ``--save-raw`` writes): MFF-GAN's tanh-range image,
                  GACN's rectified decision map, MFIF-GAN's focus map.
    decision_map  float32 H×W in [0, 1] for decision-map models (what ``--save-map`` writes), else None.
    depth         int32 H×W, per pixel the 0-based index of the frame the result takes (what
                  ``--save-depth`` writes; rules per model in :mod:`fusion_tf.core.focus`), else None.
    frames        how many frames were fused (the depth map's scale: indices 0 … frames − 1).
    """

    fused: np.ndarray
    raw: np.ndarray | None = None
    decision_map: np.ndarray | None = None
    depth: np.ndarray | None = None
    frames: int | None = None
    metadata: object | None = None  # the first source file's ImageMetadata (set by fusion_tf.api.fuse)


class Fuser(Protocol):
    """A loaded model ready to fuse groups of uint8 source images of one size (≥ 2, in order)."""

    name: str

    def fuse(self, images: Sequence[np.ndarray], **options) -> FusionResult: ...


def checked_frames(images: Iterable[np.ndarray], min_side: int = 1, model: str = "this model") -> Iterator[np.ndarray]:
    """Validate frames as they stream by (uint8 or uint16 grey/RGB, one shape and one dtype, ``min_side``
    pixels at least), so a stack read lazily — one frame in memory at a time — fails on the first bad
    frame, with its number."""
    shape = None
    for i, im in enumerate(images):
        im = np.asarray(im)
        if im.dtype not in (np.uint8, np.uint16) or im.ndim not in (2, 3) or (im.ndim == 3 and im.shape[-1] != 3):
            raise InputImageError(f"image {i + 1}: expected uint8 or uint16 H×W or H×W×3, got {im.dtype} {im.shape}")
        if shape is None:
            shape, dtype = im.shape, im.dtype
            if min(shape[:2]) < min_side:
                raise InputImageError(
                    f"{model} needs images of at least {min_side}×{min_side} pixels, got {shape[1]}×{shape[0]}")
        elif im.shape != shape:
            raise InputImageError(f"image {i + 1} has shape {im.shape}, image 1 has {shape}")
        elif im.dtype != dtype:
            raise InputImageError(f"image {i + 1} is {8 * im.itemsize}-bit, image 1 is {8 * dtype.itemsize}-bit; "
                                  "fuse sources of one bit depth")
        yield im


def serial_stream(images: Iterable[np.ndarray], fuse_pair, model: str, min_side: int = 1) -> tuple:
    """Serial fusion over a stream — (1, 2) → F, then (F, 3), … — returning the last ``fuse_pair`` result.

    ``fuse_pair(a, b)`` returns a tuple whose first item is the fused uint8 image.
    """
    frames = checked_frames(images, min_side, model)
    first = next(frames, None)
    out, count = None, 0 if first is None else 1
    fused = first
    for image in frames:
        out = fuse_pair(fused, image)
        fused, count = out[0], count + 1
    if out is None:
        raise InputImageError(f"need at least 2 images, got {count}")
    return out
