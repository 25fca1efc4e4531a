"""Y-channel fusion shared by the end-to-end generators (MFF-GAN, GIPC-GAN).

Both papers fuse colour the same way (their MATLAB wrappers come from one lab): the network fuses
BT.601 studio-swing luma Y, Cb/Cr are fused by the saturation-weighted rule
(:func:`fusion_tf.core.color.fuse_chroma`), and the result goes back through the studio inverse.
More than two images are fused serially.  Models differ only in their generator and, for MFF-GAN,
in optional "faithful" luma input/output quirks, which subclasses override.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from fusion_tf.core import color, focus
from fusion_tf.inference import tiling
from fusion_tf.inference.base import FusionResult, checked_frames, serial_stream

@dataclass(frozen=True)
class LumaNetwork:
    """The compiled parts a :class:`LumaFuser` runs, whichever engine compiled them.

    Made from a Keras generator by the fuser itself (the TF route, any backend), or from cached ONNX
    graphs by :meth:`LumaFuser.cached_network` (no TensorFlow in the process).
    """

    run: Callable  # (near, far) luma (N, H, W, 1) in [−1, 1] → the generator's tanh image (N, H, W, 1)
    halo: int  # receptive-field radius in pixels: the overlap ``tile=`` needs
    measure: Callable | None = None  # focus measure on (N, H, W, 1); None: the class's ``focus_measure``


class LumaFuser:
    """Fuses groups of same-size uint8 images (grey or RGB; first = near focus) with ``generator``,
    a Keras model mapping ``[near, far]`` (N,H,W,1) in [−1,1] to a tanh image — or a
    :class:`LumaNetwork` already compiled from one."""

    name = "luma"
    #: the per-frame focus measure behind ``FusionResult.depth`` (:mod:`fusion_tf.core.focus`)
    focus_measure = staticmethod(focus.screening_measure)
    #: the same measure as a graph on (N, H, W, 1) tensors, for the ONNX backend to convert
    focus_graph = staticmethod(focus.screening_graph)

    def __init__(self, generator, jit_compile: bool = False, backend: str | None = None, tile: int | None = None):
        # tile: cores of N×N pixels run with a halo of the generator's receptive field (both models
        # are purely local, so tiles are exact and run on whichever backend ``_run`` is)
        self.tile = None if tile is None else tiling.check_tile(tile)
        if isinstance(generator, LumaNetwork):
            self.generator, self.compiled = None, generator
        else:
            self.generator, self.compiled = generator, self._compile(generator, backend, jit_compile)
        self._run, self.halo = self.compiled.run, self.compiled.halo
        measure = self.compiled.measure
        if measure is not None:
            self.focus_measure = lambda plane: np.asarray(measure(plane[None, ..., None]))[0, ..., 0]

    def _compile(self, generator, backend: str | None, jit_compile: bool) -> LumaNetwork:
        import tensorflow as tf

        from fusion_tf.inference import backends

        spec = tf.TensorSpec((None, None, None, 1), tf.float32)
        # One trace serves every image size.  XLA would recompile per size (≈1.5 s each), so it is
        # only worth it for many images of one size (--jit).  backend="onnxruntime": the same
        # generator converted to ONNX (inference.backends).
        run = backends.network(lambda a, b: generator([a, b], training=False), [spec, spec], name=self.name,
                               variables=generator.weights, backend=backend, jit_compile=jit_compile)
        measure = None
        if backend not in (None, "tf"):  # the depth map's measure on the same engine: a cached run needs no TF
            measure = backends.network(self.focus_graph, [spec], name=f"{self.name}-focus", variables=(),
                                       backend=backend)
        return LumaNetwork(run, tiling.generator_halo(generator), measure)

    # -- the ONNX cache index (fusion_tf.inference.onnx_cache; used by fusion_tf.registry) ----
    @classmethod
    def onnx_cache_context(cls, source) -> dict:
        """What besides the weights file shapes the graph of ``source`` (nothing for MFF-GAN)."""
        return {}

    def onnx_cache_entry(self) -> dict | None:
        """The graphs and details :meth:`cached_network` needs; None off the ONNX backend."""
        paths = {"network": getattr(self._run, "path", None), "measure": getattr(self.compiled.measure, "path", None)}
        if None in paths.values():
            return None
        return {"graphs": paths, "halo": self.halo}

    @staticmethod
    def cached_network(sessions: dict, entry: dict) -> LumaNetwork:
        """The :class:`LumaNetwork` of a cache entry recorded from :meth:`onnx_cache_entry`
        (KeyError/ValueError if the entry lacks something)."""
        halo = int(entry["halo"])
        if halo < 0:
            raise ValueError(f"halo {halo}")
        return LumaNetwork(sessions["network"], halo, sessions["measure"])

    # -- one pair ---------------------------------------------------------------------------
    def network(self, near_y: np.ndarray, far_y: np.ndarray) -> np.ndarray:
        """Raw tanh output (H×W float32) for two luma planes holding 0..255 values."""
        a = (np.asarray(near_y, np.float32) - 127.5) / 127.5
        b = (np.asarray(far_y, np.float32) - 127.5) / 127.5
        run = lambda x, y: np.asarray(self._run(x[None, ..., None], y[None, ..., None]))[0, ..., 0]  # noqa: E731
        if self.tile is None or tiling.covers_in_one(*a.shape, self.tile):
            return run(a, b)
        return tiling.stitch(run, [a, b], tiling.tile_grid(*a.shape, self.tile, self.halo))

    def _luma_in(self, image: np.ndarray) -> np.ndarray:
        """The plane the network sees: grey as is, colour → studio Y (unrounded); 16-bit on the 0..255 scale."""
        if image.ndim == 2:
            return color.to_255(image).astype(np.float32)
        return self._bands(lambda im: color.rgb_to_y_studio(color.to_255(im)).astype(np.float32), image)

    def focus_score(self, image: np.ndarray) -> np.ndarray:
        """``focus_measure`` of the plane the network sees (luma in [−1, 1]); tiled, exactly, with tiles."""
        plane = (np.asarray(self._luma_in(image), np.float32) - 127.5) / 127.5
        if self.tile is None or tiling.covers_in_one(*plane.shape, self.tile):
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
        return self._bands(self._colour, y, near, far), raw

    def _bands(self, fn: Callable, *arrays: np.ndarray) -> np.ndarray:
        """Pixel-wise ``fn`` in row bands of ``tile`` rows when tiling (bounded float64 temporaries)."""
        return fn(*arrays) if self.tile is None else tiling.rowwise(fn, *arrays, rows=self.tile)

    @staticmethod
    def _colour(y: np.ndarray, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """Fused luma + Cb/Cr rule → RGB of the sources' dtype; pixel-wise, so tiled fusion runs it in row bands."""
        cb1, cr1 = color.rgb_to_cbcr_studio(color.to_255(near))
        cb2, cr2 = color.rgb_to_cbcr_studio(color.to_255(far))
        rgb = color.ycbcr_studio_to_rgb(y, color.fuse_chroma(cb1, cb2), color.fuse_chroma(cr1, cr2))
        return color.from_255(rgb, near.dtype)

    # -- groups -----------------------------------------------------------------------------
    def fuse(self, images: Sequence[np.ndarray], *, depth: bool = True, **options) -> FusionResult:
        """Serial fusion (both papers): fuse 1 and 2, then the result with 3, and so on."""
        return self.fuse_stream(images, depth=depth)

    def fuse_stream(self, images: Iterable[np.ndarray], strategy: str | None = None, *,
                    depth: bool = True) -> FusionResult:
        """:meth:`fuse` over frames read lazily (one source in memory at a time).

        ``depth``: the output is synthesised, so per pixel the frame that maximises ``focus_measure``
        (ties → the earlier frame), streamed alongside the fusion.  ``depth=False`` skips that
        measure (one more pass over every frame: ~5 ms a 520² frame, ~30 ms at 1600×1200) and leaves
        ``result.depth`` None."""
        tracker = focus.FocusArgmax()
        frames = tracker.track(checked_frames(images, model=self.name), self.focus_score if depth else None)
        fused, raw = serial_stream(frames, self.fuse_pair, self.name)
        return FusionResult(fused=fused, raw=raw.astype(np.float32), depth=tracker.index, frames=tracker.count)
