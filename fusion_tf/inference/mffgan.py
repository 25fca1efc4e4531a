"""MFF-GAN inference: pairs, serial stacks, grey and colour, faithful or clean output.

Colour follows the original MATLAB wrapper: the network fuses studio-swing luma Y; Cb/Cr are fused
by the saturation-weighted rule; the result goes back through the studio inverse.

Output modes (spec ``mff_gan.md`` §8–§9):

``plain`` (default)  ``y·127.5 + 127.5``, rounded once at the end, no JPEG round trips.  The spec
                     recommends it: it is the network's output without the original's save quirks.
``faithful``         reproduces the original pipeline's bytes: MATLAB-rounded studio Y written as JPEG
                     q75 before the network, the output byte-scaled (per-image min–max stretch, +0.5,
                     truncation) and JPEG q75 encoded, and for colour that stretched Y fed to the
                     inverse transform (a second ×1.164 stretch).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from fusion_tf.core import color
from fusion_tf.errors import InputImageError
from fusion_tf.inference.base import FusionResult
from fusion_tf.models.mffgan import build_generator
from fusion_tf.paths import SHIPPED_DIR
from fusion_tf.weights.own import load_own_weights
from fusion_tf.weights.tf1 import is_tf1_checkpoint, load_tf1_checkpoint

OUTPUT_MODES = ("plain", "faithful")
DEFAULT_WEIGHTS = SHIPPED_DIR / "mffgan" / "generator.weights.h5"


def jpeg_round_trip(grey: np.ndarray, quality: int = 75) -> np.ndarray:
    """Encode a uint8 grey image as JPEG and decode it again (the original saved intermediates so)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def bytescale(x: np.ndarray) -> np.ndarray:
    """SciPy's old ``imsave`` conversion: stretch min..max to 0..255, add 0.5, truncate."""
    x = np.asarray(x, np.float64)
    lo, hi = x.min(), x.max()
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    return ((x - lo) * scale + 0.5).clip(0, 255).astype(np.uint8)


def load_generator(weights: str | None = None):
    """A built generator with ``weights``: TF1 checkpoint prefix, own weights/run/checkpoint, or default."""
    g = build_generator()
    path = DEFAULT_WEIGHTS if weights is None else Path(weights)
    if weights is not None and is_tf1_checkpoint(path):
        load_tf1_checkpoint(path, g)
    else:
        load_own_weights(g, path, key="generator", weights_name="generator")
    return g


class MFFGANFuser:
    """Fuses groups of same-size uint8 images (grey or RGB; first = near focus) with one generator."""

    name = "mffgan"

    def __init__(self, weights: str | None = None, output_mode: str = "plain", jit_compile: bool = False):
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}")
        self.generator = load_generator(weights)
        self.output_mode = output_mode
        spec = tf.TensorSpec((None, None, None, 1), tf.float32)
        # One trace serves every image size.  XLA would recompile per size (≈1.5 s each), so it is
        # only worth it for many images of one size (--jit).
        self._run = tf.function(lambda a, b: self.generator([a, b], training=False),
                                input_signature=[spec, spec], jit_compile=jit_compile)

    # -- one pair ---------------------------------------------------------------------------
    def network(self, near_y: np.ndarray, far_y: np.ndarray) -> np.ndarray:
        """Raw tanh output (H×W float32) for two luma planes holding 0..255 values."""
        a = ((np.asarray(near_y, np.float32) - 127.5) / 127.5)[None, ..., None]
        b = ((np.asarray(far_y, np.float32) - 127.5) / 127.5)[None, ..., None]
        return self._run(tf.constant(a), tf.constant(b)).numpy()[0, ..., 0]

    def _luma_in(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            return image.astype(np.float32)
        if self.output_mode == "faithful":
            return jpeg_round_trip(color.rgb_to_y_studio_matlab(image)).astype(np.float32)
        return color.rgb_to_y_studio(image).astype(np.float32)

    def _luma_out(self, raw: np.ndarray) -> np.ndarray:
        """Fused luma as 0..255 floats, the way the chosen output mode saves it."""
        if self.output_mode == "faithful":
            return jpeg_round_trip(bytescale(raw * 127.5 + 127.5)).astype(np.float64)
        return raw.astype(np.float64) * 127.5 + 127.5

    def fuse_pair(self, near: np.ndarray, far: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fuse two uint8 images of one colour mode; returns (fused uint8, raw tanh output)."""
        raw = self.network(self._luma_in(near), self._luma_in(far))
        y = self._luma_out(raw)
        if near.ndim == 2:
            return color.to_uint8(y), raw
        cb1, cr1 = color.rgb_to_cbcr_studio(near)
        cb2, cr2 = color.rgb_to_cbcr_studio(far)
        rgb = color.ycbcr_studio_to_rgb(y, color.fuse_chroma(cb1, cb2), color.fuse_chroma(cr1, cr2))
        return color.to_uint8(rgb), raw

    # -- groups -----------------------------------------------------------------------------
    def fuse(self, images: Sequence[np.ndarray], **options) -> FusionResult:
        """Serial fusion as in the paper (§4.6): fuse 1 and 2, then the result with 3, and so on."""
        if len(images) < 2:
            raise InputImageError(f"need at least 2 images, got {len(images)}")
        fused, raw = images[0], None
        for nxt in images[1:]:
            fused, raw = self.fuse_pair(fused, nxt)
        return FusionResult(fused=fused, raw=raw.astype(np.float32))


def load_fuser(weights: str | None = None, **options) -> MFFGANFuser:
    return MFFGANFuser(weights, **options)
