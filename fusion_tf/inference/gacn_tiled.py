"""GACN on tiles (``--tile``): its four channel-SE means from a pre-pass over the tiles, then the
real pass with those scales fixed; optionally the pre-SE feature maps kept between the passes.

The principle (halos, float64 SE sums, equality with whole-image inference) is
:mod:`fusion_tf.inference.tiling`'s, which also cuts and stitches the tiles.
"""

from __future__ import annotations

import weakref
from typing import Callable

import numpy as np
import tensorflow as tf

from fusion_tf.inference.tiling import Tile, channel_means, default_network, receptive_halo, stitch, tile_grid


#: Default budget of :class:`TiledGACN`'s feature cache: full-resolution pre-SE feature maps (64
#: channels, 256 B per pixel and image) kept between the pre-pass and the real pass.  1 GiB holds two
#: 1600×1200 images (the pair, or a calibration reference and the current frame); a 4000×3000 image
#: (3.1 GB) never fits, so large images recompute instead and memory stays bounded by the tile.
FEATURE_CACHE_BYTES = 1 << 30


def excitation(se, mean) -> tf.Tensor:
    """A channel SE's scales for a given (B, C) mean: ``sigmoid(fc₂(ReLU(fc₁(mean))))``."""
    return tf.sigmoid(se.fc_2(tf.nn.relu(se.fc_0(tf.cast(mean, tf.float32)))))


def _grown(t: Tile, radius: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``t``'s window grown by ``radius`` on every side, clipped to the image: (y0, y1, x0, x1)."""
    return max(0, t.wy0 - radius), min(height, t.wy1 + radius), max(0, t.wx0 - radius), min(width, t.wx1 + radius)


class FeatureCache:
    """One grey image's features at full resolution from a cached pre-pass, held by TensorFlow:
    ``blocks[i]`` is stage i's map times its SE scales, ``cᵢ·sᵢ`` (H×W×16 float32), the blocks the whole
    image concatenates.  Once :meth:`TiledGACN.maps` has been handed the image's scales (the
    calibration reference, reused for every frame) it holds the image's SF (1×H×W×64) instead.  Keeps a
    copy of the grey image, so it is only ever used for the image it was computed from."""

    def __init__(self, grey: np.ndarray):
        self.grey = np.array(grey, np.float32, copy=True)
        self.blocks: list[tf.Tensor] = []
        self.sf: tf.Tensor | None = None

    def matches(self, grey: np.ndarray) -> bool:
        return self.grey.shape == grey.shape and np.array_equal(self.grey, grey)


class Scales(list):
    """The four SE scale vectors (1, 16) of one image, as :meth:`TiledGACN.feature_scales` returns them;
    ``cache``: that image's :class:`FeatureCache` when the budget allowed one (else None)."""

    cache: FeatureCache | None = None


def _box(y0: int, x0: int, h: int, w: int) -> np.ndarray:
    return np.array([y0, x0, h, w], np.int32)


def _crop(x, box):
    """``x[:, top : top + h, left : left + w]`` for ``box = (top, left, h, w)`` (static channel count)."""
    return x[:, box[0] : box[0] + box[2], box[1] : box[1] + box[3], :]


class TiledGACN:
    """GACN on tiles.  The feature extractor's four channel SEs (``se_0``–``se_3``) need whole-image
    means, so each image gets a four-pass pre-pass (:meth:`feature_scales`); the rest is local.

    Halo (receptive-field radius), the longest path from a grey input pixel to ``output_bgf``:
    four 3×3 feature convs (4); SF = backward differences (1) + 11×11 window sum (5): 6; decision
    path = SSE 7×7 (3) + four × (3×3 conv (1) + SSE 7×7 (3)): 19; boundary guided filter = two
    nested 7×7 box means (6; the 9×9 blur of the map, 4, is shorter): 6.  Total 4 + 6 + 19 + 6 = 35.
    The stages run on nested windows, each as large as the next stage needs: the decision path on
    core + 25 (``DECISION_HALO``), SF on core + 31, the features on core + 35.

    **Feature cache** (``cache_bytes``, default :data:`FEATURE_CACHE_BYTES`; TF backend only).
    Without it, the pre-pass for ``se_i`` recomputes the i + 1 feature convs on every tile (halo
    i + 1) and the real pass all four again: ~2.7× the convolutions of one feature extraction, and in
    calibration the reference's features and SF once more for every frame.  When an image's features
    (256 B/pixel) fit in what is left of the budget, the pre-pass keeps them at full resolution
    instead (:class:`FeatureCache`): pass i runs conv i alone, on full-width bands of N² pixels (halo
    1) cut from the cached c₀s₀…c₍ᵢ₋₁₎s₍ᵢ₋₁₎, and the real pass cuts its feature windows from the cache.
    A reference whose :class:`Scales` come back to :meth:`maps` keeps its SF instead, computed once.
    Every cached value comes from the same ops on the same inputs as in the whole image, so cached
    and recomputed maps agree to float summation order (tested).  While a pass assembles its map,
    up to two more 16-channel maps (a quarter of the image's cache each) exist for a moment.
    """

    FEATURE_HALO = receptive_halo([(1, 1)] * 4)
    SF_HALO = receptive_halo([(6, 1)])
    DECISION_HALO = receptive_halo([(3, 1)] + [(1, 1), (3, 1)] * 4 + [(6, 1)])
    HALO = FEATURE_HALO + SF_HALO + DECISION_HALO

    def __init__(self, model, tile: int, network: Callable | None = None, cache_bytes: int = FEATURE_CACHE_BYTES):
        self.model, self.tile = model, tile
        # the cached passes run their convs in TF graphs: with another backend's network, no cache
        self.cache_bytes = int(cache_bytes) if network is None else 0
        self.cached_bytes = 0  # held by live FeatureCaches (given back when they are freed)
        network = network or default_network
        grey = tf.TensorSpec([1, None, None, 1], tf.float32)
        scale = tf.TensorSpec([1, 16], tf.float32)
        # k = 0..3: the pre-SE map of stage k (pre-pass probes); k = 4: the 64-channel features.
        # One trace per k, dynamic H and W, on the fuser's backend.
        self._features = [network(self._probe, [grey] + [scale] * k, f"gacn-tiled-features{k}") for k in range(5)]
        # cached maps are H×W×C (no batch axis): a band of whole rows is then a slice of axis 0, which
        # TensorFlow hands out without copying
        block = tf.TensorSpec([None, None, 16], tf.float32)
        feats = tf.TensorSpec([1, None, None, 64], tf.float32)
        box = tf.TensorSpec([4], tf.int32)
        # cached pre-pass, stage k: conv k on a band of the cache, the band's core and its channel sums
        plane = tf.TensorSpec([None, None, 1], tf.float32)
        self._stages = [tf.function(self._stage_graph(k), input_signature=[block] * k + [plane] * (k == 0) + [box])
                        for k in range(4)]
        # SF, decision path and guided filter stay in TF (their sigmoid(1000·x) amplify round-off)
        self._sf = tf.function(self._sf_graph, input_signature=[feats, box, box])
        self._cached_sf = tf.function(self._cached_sf_graph, input_signature=[block] * 4 + [box, box])
        self._slice = tf.function(_crop, input_signature=[feats, box])
        self._decide = tf.function(self._decide_graph, input_signature=[feats, feats, grey, grey])

    # -- graphs --------------------------------------------------------------------------------
    def features(self, x, scales):
        """The 64-channel feature stack with fixed SE scales; with fewer than four scales, the
        pre-SE activation of the next stage (what its SE would average)."""
        feats, inp = [], x
        for i, (conv, _) in enumerate(self.model.feature_stages):
            c = conv(inp, training=False)
            if i == len(scales):
                return c
            feats.append(c * scales[i][:, None, None, :])
            inp = tf.concat(feats, axis=-1)
        return inp

    def _probe(self, x, *scales):
        return self.features(x, list(scales))

    def _stage_graph(self, k: int) -> Callable:
        conv = self.model.feature_stages[k][0]

        def stage(*args):
            """Rows ``rows[0]:rows[1]`` of the inputs (the grey image, or the cached c₀s₀…c₍ₖ₋₁₎s₍ₖ₋₁₎
            concatenated as the whole image concatenates them) through conv k; returns the rows
            ``rows[2]:rows[3]`` of the result (the band's core) and their per-channel sums (float32
            along each row, float64 over the rows)."""
            *inputs, rows = args
            x = tf.concat([b[rows[0] : rows[1]] for b in inputs], axis=-1)
            core = conv(x[None], training=False)[0, rows[2] - rows[0] : rows[3] - rows[0]]
            return core, tf.reduce_sum(tf.cast(tf.reduce_sum(core, axis=1), tf.float64), axis=0)

        return stage

    def _sf_graph(self, feats, crop, out):
        """SF of the features cropped to ``crop``, cropped again to ``out`` (boxes: top, left, h, w)."""
        from fusion_tf.models.gacn import spatial_frequency

        return _crop(spatial_frequency(_crop(feats, crop)), out)

    def _cached_sf_graph(self, f0, f1, f2, f3, window, out):
        """SF of the cached features' ``window``, cropped to ``out``."""
        from fusion_tf.models.gacn import spatial_frequency

        y0, x0, h, w = window[0], window[1], window[2], window[3]
        feats = tf.concat([f[y0 : y0 + h, x0 : x0 + w] for f in (f0, f1, f2, f3)], axis=-1)
        return _crop(spatial_frequency(feats[None]), out)

    def _decide_graph(self, sf1, sf2, g1, g2):
        return self.model.decide(sf1, sf2, g1, g2, training=False)

    # -- geometry --------------------------------------------------------------------------------
    def grid(self, shape, halo: int) -> list[Tile]:
        return tile_grid(shape[0], shape[1], self.tile, halo)

    def bands(self, shape, halo: int) -> list[Tile]:
        """Full-width bands of one N×N core's pixels each (at least one row), for the cached passes:
        whole rows of the cache are contiguous memory."""
        height, width = shape
        rows = max(1, self.tile * self.tile // width)
        return [Tile(y0, min(y0 + rows, height), 0, width, max(0, y0 - halo), min(height, y0 + rows + halo), 0, width)
                for y0 in range(0, height, rows)]

    # -- the feature cache ---------------------------------------------------------------------------
    def _reserve(self, nbytes: int) -> bool:
        """Take ``nbytes`` of the cache budget if that much is left."""
        if self.cached_bytes + nbytes > self.cache_bytes:
            return False
        self.cached_bytes += nbytes
        return True

    def _release(self, nbytes: int) -> None:
        self.cached_bytes -= nbytes

    def _new_cache(self, grey: np.ndarray) -> FeatureCache | None:
        nbytes = grey.size * 64 * 4
        if not self._reserve(nbytes):
            return None
        cache = FeatureCache(grey)
        weakref.finalize(cache, self._release, nbytes)
        return cache

    def _to_sf(self, cache: FeatureCache) -> None:
        """Replace the cached features by their SF (band by band, halo 6), for a reference whose SF
        every frame needs.  Needs a second image's worth of budget while it converts; without it the
        features stay (and each frame computes the reference's SF windows from them)."""
        nbytes = cache.grey.size * 64 * 4
        if cache.sf is not None or not self._reserve(nbytes):
            return
        try:
            rows = [self._cached_sf(*cache.blocks, _box(t.wy0, 0, t.wy1 - t.wy0, t.wx1),
                                    _box(t.y0 - t.wy0, 0, t.y1 - t.y0, t.x1))
                    for t in self.bands(cache.grey.shape, self.SF_HALO)]
            cache.blocks = []
            cache.sf = tf.concat(rows, axis=1)
        finally:
            self._release(nbytes)

    # -- passes ----------------------------------------------------------------------------------
    def feature_scales(self, grey: np.ndarray) -> Scales:
        """The four SE scale vectors (1, 16) of one grey H×W image, pass by pass; with the image's
        :class:`FeatureCache` attached when the budget has room for it."""
        scales = Scales()
        scales.cache = cache = self._new_cache(grey)
        image = None if cache is None else tf.constant(grey[:, :, None])
        for i, (_, se) in enumerate(self.model.feature_stages):
            if cache is None:
                probe = self._features[i]
                run = lambda w: probe(w[None, :, :, None], *scales)  # noqa: E731
                mean = channel_means(run, [grey], self.grid(grey.shape, i + 1))
            else:
                cores, total = [], np.zeros(16, np.float64)
                for t in self.bands(grey.shape, 1):
                    rows = np.array([t.wy0, t.wy1, t.y0, t.y1], np.int32)
                    core, sums = self._stages[i](*(cache.blocks or [image]), rows)
                    cores.append(core)
                    total += np.asarray(sums)
                mean = (total / grey.size)[None]
            scales.append(excitation(se, mean))
            if cache is not None:  # cᵢ·sᵢ: the same float32 products as the whole image's
                cache.blocks.append(tf.concat(cores, axis=0) * scales[i][0])
                del cores
        return scales

    def _sf_window(self, grey: np.ndarray, scales, cache: FeatureCache | None, t: Tile):
        """The SF (1, h, w, 64) on decision window ``t`` (core + DECISION_HALO), exact there."""
        height, width = grey.shape
        out_h, out_w = t.wy1 - t.wy0, t.wx1 - t.wx0
        if cache is not None and cache.sf is not None:
            return self._slice(cache.sf, _box(t.wy0, t.wx0, out_h, out_w))
        fy0, fy1, fx0, fx1 = _grown(t, self.SF_HALO, height, width)  # the features SF needs
        out = _box(t.wy0 - fy0, t.wx0 - fx0, out_h, out_w)
        if cache is not None:
            return self._cached_sf(*cache.blocks, _box(fy0, fx0, fy1 - fy0, fx1 - fx0), out)
        gy0, gy1, gx0, gx1 = _grown(t, self.SF_HALO + self.FEATURE_HALO, height, width)  # their input
        feats = self._features[4](grey[None, gy0:gy1, gx0:gx1, None], *scales)
        return self._sf(feats, _box(fy0 - gy0, fx0 - gx0, fy1 - fy0, fx1 - fx0), out)

    def maps(self, g1: np.ndarray, g2: np.ndarray, scales1=None, scales2=None) -> tuple[np.ndarray, np.ndarray]:
        """``(output_origin, output_bgf)`` H×W float32 for two grey H×W images (scales: pre-computed;
        :class:`Scales` from :meth:`feature_scales` bring their image's cache, used if it is that image's)."""
        sources = []
        for grey, scales in ((g1, scales1), (g2, scales2)):
            if scales is None:  # computed here: the cache (if any) lives for this call only
                scales = self.feature_scales(grey)
                cache = scales.cache
            else:  # handed in (calibration reference): worth keeping its SF for the next calls
                cache = getattr(scales, "cache", None)
                cache = cache if cache is not None and cache.matches(grey) else None
                if cache is not None:
                    self._to_sf(cache)
            sources.append((grey, list(scales), cache))

        def run(w1, w2, t):
            sf1, sf2 = (self._sf_window(grey, scales, cache, t) for grey, scales, cache in sources)
            o, b = self._decide(sf1, sf2, w1[None, :, :, None], w2[None, :, :, None])
            return np.asarray(o)[0, ..., 0], np.asarray(b)[0, ..., 0]

        return stitch(run, [g1, g2], self.grid(g1.shape, self.DECISION_HALO), pass_tile=True)
