"""Y-channel fusion shared by the end-to-end generators (MFF-GAN, GIPC-GAN).

Both papers fuse colour the same way (their MATLAB wrappers come from one lab): the network fuses
BT.601 studio-swing luma Y, Cb/Cr are fused by the saturation-weighted rule
(:func:`fusion_tf.core.color.fuse_chroma`), and the result goes back through the studio inverse.
More than two images are fused serially.  Models differ only in their generator and, for MFF-GAN,
in optional "faithful" luma input/output quirks, which subclasses override.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from fusion_tf.core import color, focus
from fusion_tf.inference import backends, tiling
from fusion_tf.inference.base import FusionResult, checked_frames, serial_stream


class LumaFuser:
    """Fuses groups of same-size uint8 images (grey or RGB; first = near focus) with ``generator``,
    a Keras model mapping ``[near, far]`` (N,H,W,1) in [−1,1] to a tanh image."""

    name = "luma"
    #: the per-frame focus measure behind ``FusionResult.depth`` (:mod:`fusion_tf.core.focus`)
    focus_measure = staticmethod(focus.screening_measure)

    def __init__(self, generator, jit_compile: bool = False, backend: str | None = None, tile: int | None = None):
        self.generator = generator
        # tile: cores of N×N pixels run with a halo of the generator's receptive field (both models
        # are purely local, so tiles are exact and run on whichever backend ``_run`` is)
        self.tile, self.halo = tiling.check_tile(tile), tiling.generator_halo(generator)
        spec = tf.TensorSpec((None, None, None, 1), tf.float32)
        # One trace serves every image size.  XLA would recompile per size (≈1.5 s each), so it is
        # only worth it for many images of one size (--jit).  backend="onnxruntime": the same
        # generator converted to ONNX (inference.backends).
        self._run = backends.network(lambda a, b: self.generator([a, b], training=False), [spec, spec],
                                     name=self.name, variables=generator.weights, backend=backend,
                                     jit_compile=jit_compile)

    # -- one pair ---------------------------------------------------------------------------
    def network(self, near_y: np.ndarray, far_y: np.ndarray) -> np.ndarray:
        """Raw tanh output (H×W float32) for two luma planes holding 0..255 values."""
        a = (np.asarray(near_y, np.float32) - 127.5) / 127.5
        b = (np.asarray(far_y, np.float32) - 127.5) / 127.5
        run = lambda x, y: np.asarray(self._run(x[None, ..., None], y[None, ..., None]))[0, ..., 0]  # noqa: E731
        if tiling.covers_in_one(*a.shape, self.tile):
            return run(a, b)
        return tiling.stitch(run, [a, b], tiling.tile_grid(*a.shape, self.tile, self.halo))

    def _luma_in(self, image: np.ndarray) -> np.ndarray:
        """The plane the network sees: grey as is, colour → studio Y (unrounded); 16-bit on the 0..255 scale."""
        if image.ndim == 2:
            return color.to_255(image).astype(np.float32)
        return tiling.rowwise(lambda im: color.rgb_to_y_studio(color.to_255(im)).astype(np.float32), image,
                              rows=self.tile)

    def focus_score(self, image: np.ndarray) -> np.ndarray:
        """``focus_measure`` of the plane the network sees (luma in [−1, 1]); tiled, exactly, with tiles."""
        plane = (np.asarray(self._luma_in(image), np.float32) - 127.5) / 127.5
        if tiling.covers_in_one(*plane.shape, self.tile):
            return self.focus_measure(plane)
        grid = tiling.tile_grid(*plane.shape, self.tile, focus.MEASURE_HALO)
        return tiling.stitch(self.focus_measure, [plane], grid)

    def _luma_out(self, raw: np.ndarray) -> np.ndarray:
        """Fused luma as 0..255 floats: ``y·127.5 + 127.5`` (rounded once, at the very end)."""
        return raw.astype(np.float64) * 127.5 + 127.5

    def fuse_pair(self, near: np.ndarray, far: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fuse two uint8 (or two uint16) images of one colour mode; returns (fused, raw tanh output).

        16-bit sources: Y, the network and the chroma rule run at float precision and the result is
        rounded once to 16 bits (:func:`~fusion_tf.core.color.from_255`)."""
        raw = self.network(self._luma_in(near), self._luma_in(far))
        y = self._luma_out(raw)
        if near.ndim == 2:
            return color.from_255(y, near.dtype), raw
        return tiling.rowwise(self._colour, y, near, far, rows=self.tile), raw

    @staticmethod
    def _colour(y: np.ndarray, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """Fused luma + Cb/Cr rule → RGB of the sources' dtype; pixel-wise, so tiled fusion runs it in row bands."""
        cb1, cr1 = color.rgb_to_cbcr_studio(color.to_255(near))
        cb2, cr2 = color.rgb_to_cbcr_studio(color.to_255(far))
        rgb = color.ycbcr_studio_to_rgb(y, color.fuse_chroma(cb1, cb2), color.fuse_chroma(cr1, cr2))
        return color.from_255(rgb, near.dtype)

    # -- groups -----------------------------------------------------------------------------
    def fuse(self, images: Sequence[np.ndarray], **options) -> FusionResult:
        """Serial fusion (both papers): fuse 1 and 2, then the result with 3, and so on."""
        return self.fuse_stream(images)

    def fuse_stream(self, images: Iterable[np.ndarray], strategy: str | None = None) -> FusionResult:
        """:meth:`fuse` over frames read lazily (one source in memory at a time).

        ``depth``: the output is synthesised, so per pixel the frame that maximises ``focus_measure``
        (ties → the earlier frame), streamed alongside the fusion."""
        depth = focus.FocusArgmax()
        frames = depth.track(checked_frames(images, model=self.name), self.focus_score)
        fused, raw = serial_stream(frames, self.fuse_pair, self.name)
        return FusionResult(fused=fused, raw=raw.astype(np.float32), depth=depth.index, frames=depth.count)
