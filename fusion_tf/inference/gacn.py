"""GACN inference: two-image fusion, serial N-image fusion and decision calibration (spec §6).

The network sees grey images (skimage rule, not rounded); its rectified map ``output_bgf`` weights
the original RGB (or grey) sources, one map for all channels.  For N > 2 images:

* ``serial`` (``multi_fuse_origin``): fuse the running result with the next image, its grey version
  (skimage rule, unrounded float) becoming the next ``img1``;
* ``calibration`` (``multi_fuse_calibration``, the paper's contribution): image 0 is the reference, its
  features are computed once; every other image is compared with it, and a decision volume
  ``D₀ = m₀, D₁ = 1 − m₀, Dⱼ = D₀ / (mⱼ₋₁ + 1e-4) · (1 − mⱼ₋₁)`` picks, per pixel, one source (hard
  selection).  Ties are frequent (~19 % of pixels, saturated sigmoids): the **lowest index wins**,
  which reproduces every choice of the original when fed the original's own maps.  The argmax is kept as a running maximum with a strict ``>`` update, so
  memory stays at a few frames whatever N is.

Graphs are ``tf.function``s with dynamic H, W (no XLA: it would recompile for every image size).
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from fusion_tf.core import focus
from fusion_tf.core.color import rgb_to_grey_skimage
from fusion_tf.errors import InputImageError
from fusion_tf.inference import backends, tiling
from fusion_tf.inference.gacn_tiled import TiledGACN
from fusion_tf.inference.base import FusionResult, checked_frames
from fusion_tf.models.gacn import GACN, build_gacn, spatial_frequency

MULTI_STRATEGIES = ("serial", "calibration")
#: smallest image side: the guided filter needs more than 2r + 1 = 7 pixels
MIN_SIDE = 8
CALIBRATION_EPS = np.float32(1e-4)

_GREY = tf.TensorSpec([1, None, None, 1], tf.float32)
_SF = tf.TensorSpec([1, None, None, 64], tf.float32)
_SF_BLOCK = tf.TensorSpec([1, None, None, 16], tf.float32)


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 (/255) or uint16 (/65535) → float64 in [0, 1] (the colour sources the map is applied to)."""
    image = np.asarray(image)
    return image.astype(np.float64) / (65535.0 if image.dtype == np.uint16 else 255.0)


def grey_input(unit: np.ndarray) -> np.ndarray:
    """Network input from a [0, 1] image: grey stays, RGB → skimage ``rgb2gray``; float32 (1, H, W, 1)."""
    grey = unit if unit.ndim == 2 else rgb_to_grey_skimage(unit)
    return grey.astype(np.float32)[None, :, :, None]


def to_uint8_output(x: np.ndarray) -> np.ndarray:
    """The original's ``uint8(x·255 + 0.499999999)`` after clipping the ~1e-6 overshoot of the filter."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.499999999).astype(np.uint8)


def to_output(x: np.ndarray, dtype) -> np.ndarray:
    """[0, 1] → the sources' dtype: :func:`to_uint8_output`, or the same rounding on 0…65535 for 16-bit."""
    if np.dtype(dtype) == np.uint16:
        return (np.clip(x, 0.0, 1.0) * 65535.0 + 0.499999999).astype(np.uint16)
    return to_uint8_output(x)


def _blend(decision: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = decision.astype(np.float64)
    if a.ndim == 3:
        d = d[..., None]
    return d * a + (1.0 - d) * b


def _cache_bytes(gib: float) -> int:
    """``tile_cache`` in GiB → bytes; a clear error for what is no amount of memory."""
    try:
        gib = float(gib)
    except (TypeError, ValueError):
        raise InputImageError(f"tile_cache must be a number of GiB, got {gib!r}") from None
    if not 0.0 <= gib < float("inf"):
        raise InputImageError(f"tile_cache must be a finite number of GiB ≥ 0, got {gib}")
    return int(gib * (1 << 30))


class GACNFuser:
    """Loaded GACN ready to fuse uint8 images (the :class:`~fusion_tf.inference.base.Fuser` protocol)."""

    name = "gacn"

    def __init__(self, model: GACN, multi: str | None = None, backend: str | None = None, tile: int | None = None,
                 tile_cache: float | None = None):
        if multi not in (None,) + MULTI_STRATEGIES:
            raise InputImageError(f"unknown multi-image strategy {multi!r}; use one of {MULTI_STRATEGIES}")
        self.multi = multi
        self.model = model
        m = self.model
        self._pair = tf.function(self._pair_graph, input_signature=[_GREY, _GREY])
        # calibration: the reference's SF is kept as its four 16-channel blocks, and each further
        # image's SF goes block by block straight into the bimap against it, inside one graph, so no
        # 64-channel SF of it is ever made (lower peak memory; same values)
        self._sf_blocks = tf.function(lambda g: m.spatial_frequency_blocks(g, training=False), input_signature=[_GREY])
        self._calibration_map = tf.function(
            lambda sf_ref, g_ref, g: m.decide_from_attended(
                m.attended_bimap_against(sf_ref, g, training=False), g_ref, g, training=False)[1],
            input_signature=[[_SF_BLOCK] * 4, _GREY, _GREY])
        if backend not in (None, "tf"):
            self._use_backend(backend)
        # tile: the channel-SE means come from a pre-pass over the tiles (TiledGACN); the feature
        # convs run on the same backend as whole images.  tile_cache: GiB for the feature cache
        # between the passes (None: TiledGACN's default budget)
        self.tile = tiling.check_tile(tile)
        if tile_cache is not None and (self.tile is None or backend not in (None, "tf")):
            raise InputImageError("tile_cache goes with tile= on the TF backend")
        cache = {} if tile_cache is None else {"cache_bytes": _cache_bytes(tile_cache)}
        self._tiled = None if self.tile is None else TiledGACN(
            m, self.tile, network=None if backend in (None, "tf") else lambda fn, sig, name: backends.network(
                fn, sig, name=name, variables=m.weights, backend=backend), **cache)

    def _use_backend(self, backend: str) -> None:
        """Run the siamese feature extractor (all convolutions but the decision path's) on ``backend``.

        SF, the decision path and the guided filter stay in TF: the two ``sigmoid(1000·x)`` turn
        float32 round-off of another engine into map differences of up to 0.013 (measured with the
        whole network in onnxruntime), far beyond the 1e-5 parity the ONNX path guarantees.
        """
        m = self.model
        grey = tf.TensorSpec([None, None, None, 1], tf.float32)
        features = backends.network(lambda g: m.extract_features(g, training=False), [grey], name="gacn-features",
                                    variables=m.weights, backend=backend)
        sf = tf.function(spatial_frequency, input_signature=[tf.TensorSpec([None, None, None, 64], tf.float32)])
        decide = tf.function(lambda sf1, sf2, g1, g2: m.decide(sf1, sf2, g1, g2, training=False),
                             input_signature=[_SF, _SF, _GREY, _GREY])
        self._sf = lambda g: sf(features(g))
        self._pair = lambda g1, g2: decide(self._sf(g1), self._sf(g2), g1, g2)
        self._sf_blocks = lambda g: tf.split(self._sf(g), 4, axis=-1)
        self._calibration_map = lambda sf_ref, g_ref, g: decide(tf.concat(sf_ref, axis=-1), self._sf(g), g_ref, g)[1]

    def _pair_graph(self, g1, g2):
        origin, bgf, _ = self.model((g1, g2), training=False)
        return origin, bgf

    # -- public API -------------------------------------------------------------------------
    def decision_maps(self, image1: np.ndarray, image2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(output_origin, output_bgf)`` as float32 H×W for two uint8 images."""
        return self._maps(grey_input(to_unit(image1)), grey_input(to_unit(image2)))

    def _tiles_for(self, grey) -> bool:
        return self._tiled is not None and not tiling.covers_in_one(grey.shape[1], grey.shape[2], self.tile)

    def _maps(self, g1, g2) -> tuple[np.ndarray, np.ndarray]:
        """``(output_origin, output_bgf)`` H×W of two (1, H, W, 1) grey inputs, whole or tiled."""
        if self._tiles_for(g1):
            return self._tiled.maps(g1[0, ..., 0], g2[0, ..., 0])
        origin, bgf = self._pair(g1, g2)
        return np.asarray(origin)[0, ..., 0], np.asarray(bgf)[0, ..., 0]

    def fuse(self, images: Sequence[np.ndarray], multi: str | None = None, *, depth: bool = True,
             **options) -> FusionResult:
        """Fuse ≥ 2 same-size uint8 images (in the given order; image 0 is the calibration reference).

        ``multi`` (default: the one given to the constructor): ``None`` (two images → the pair fusion,
        more → ``"calibration"``), ``"serial"`` or ``"calibration"`` (also for two images: the hard
        selection, which differs from the pair fusion).  ``raw`` / ``decision_map`` of the result: the
        rectified map of the last pair (for calibration: reference vs the last image).  ``depth=False``:
        ``result.depth`` is None (GACN's index map costs next to nothing; the flag is for a uniform API).
        """
        if options:
            raise TypeError(f"unknown GACN fuse options: {sorted(options)}")
        images = list(images)
        if len(images) < 2:
            raise InputImageError(f"GACN needs at least 2 images, got {len(images)}")
        strategy = multi or self.multi or ("serial" if len(images) == 2 else "calibration")
        return self.fuse_stream(images, strategy, depth=depth)

    def fuse_stream(self, images: Iterable[np.ndarray], strategy: str = "calibration", *,
                    depth: bool = True) -> FusionResult:
        """Fuse an iterable of images read lazily (e.g. a generator over a 65-frame stack).

        Only the running result, the reference's SF (calibration) and the current frame are held, so
        memory does not grow with the number of frames.
        """
        if strategy not in MULTI_STRATEGIES:
            raise InputImageError(f"unknown multi-image strategy {strategy!r}; use one of {MULTI_STRATEGIES}")
        frames = checked_frames(images, MIN_SIDE, "GACN")
        first = next(frames, None)
        if first is None:
            raise InputImageError("GACN needs at least 2 images, got 0")
        result = self._serial(first, frames) if strategy == "serial" else self._calibration(first, frames)
        if result is None:
            raise InputImageError("GACN needs at least 2 images, got 1")
        if not depth:
            result.depth = None
        return result

    def _serial(self, first: np.ndarray, rest: Iterator[np.ndarray]) -> FusionResult | None:
        """Two-image fusion applied left to right; for two images this *is* the original ``fuse``."""
        rows = self.tile  # with tiles, the pixel-wise steps run in row bands (float64 temporaries of one band)
        running = to_unit(first)
        bgf = depth = None
        count = 1
        for image in rest:
            _, bgf = self._maps(tiling.rowwise(lambda u: grey_input(u)[0], running, rows=rows)[None],
                                self._grey(image))
            running = tiling.rowwise(lambda d, r, im: _blend(d, r, to_unit(im)), bgf, running, image, rows=rows)
            depth = focus.take_new(depth, bgf < 0.5, count)  # the dominant frame of the blend d·R + (1 − d)·new
            count += 1
        if bgf is None:
            return None
        fused = tiling.rowwise(lambda x: to_output(x, first.dtype), running, rows=rows)
        return FusionResult(fused=fused, raw=bgf, decision_map=np.clip(bgf, 0.0, 1.0), depth=depth, frames=count)

    def _grey(self, image: np.ndarray) -> np.ndarray:
        """Network input (1, H, W, 1) of a uint8 image; row bands with tiles (same values)."""
        return tiling.rowwise(lambda im: grey_input(to_unit(im))[0], image, rows=self.tile)[None]

    def _calibration(self, first: np.ndarray, rest: Iterator[np.ndarray]) -> FusionResult | None:
        """Decision calibration: reference SF computed once, one decision path per further image."""
        ref_grey = self._grey(first)
        tiled = self._tiles_for(ref_grey)  # tiles: the reference's SE scales once, its features per tile
        sf_ref = self._tiled.feature_scales(ref_grey[0, ..., 0]) if tiled else self._sf_blocks(ref_grey)
        selector = CalibrationArgmax(first)
        mask = None
        for image in rest:
            grey = self._grey(image)
            if tiled:
                mask = self._tiled.maps(ref_grey[0, ..., 0], grey[0, ..., 0], scales1=sf_ref)[1]
            else:
                mask = self._calibration_map(sf_ref, ref_grey, grey).numpy()[0, ..., 0]
            selector.add(mask, image)
        if mask is None:
            return None
        return FusionResult(fused=selector.fused, raw=mask, decision_map=np.clip(mask, 0.0, 1.0),
                            depth=selector.index, frames=selector.count)


class CalibrationArgmax:
    """Streaming first-maximal-index argmax over GACN's decision volume, selecting source pixels.

    Feed the rectified maps ``mⱼ`` of (reference, image j+1) in order with :meth:`add`.  Scores are
    float32 like the original (float64 changes ~0.01 % of the choices); a strict ``>`` keeps the earlier
    index on ties, the rule that reproduces the original's output.
    """

    def __init__(self, reference: np.ndarray):
        self.fused = np.array(reference, copy=True)
        self.index = np.zeros(reference.shape[:2], np.int32)
        self.count = 1
        self._d0 = self._best = None

    def add(self, mask: np.ndarray, image: np.ndarray) -> None:
        mask = np.asarray(mask, np.float32)
        if self._d0 is None:  # D₀ = m₀ and D₁ = 1 − m₀
            self._d0, self._best = mask, mask.copy()
            score = 1.0 - mask
        else:  # Dⱼ = D₀ / (mⱼ₋₁ + 1e-4) · (1 − mⱼ₋₁)
            score = self._d0 / (mask + CALIBRATION_EPS) * (1.0 - mask)
        better = score > self._best
        self._best[better] = score[better]
        self.fused[better] = image[better]
        self.index[better] = self.count
        self.count += 1


def build_network(source=None) -> GACN:
    """Registry hook: the unloaded network (weights come from :mod:`fusion_tf.weights.resolve`)."""
    return build_gacn()
