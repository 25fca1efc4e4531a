"""Tiled inference with a halo: bounded memory, output equal to whole-image inference.

Every network here is a stack of local operators (convolutions, window sums, box filters) plus, in
GACN and MFIF-GAN, channel squeeze-excitation, whose global mean is the only non-local step.  So:

* **Geometry** (:func:`tile_grid`).  H×W is cut into cores of N×N pixels; each core is extended by the
  model's *halo* — the radius of its receptive field — and clipped to the image.  The network runs on
  that window and only the core of its output is kept (:func:`stitch`).  A core pixel's value depends
  only on inputs within the halo, all present in the window, and every conv's zero padding at a
  window edge that is a true image edge is exactly the padding whole-image inference applies there.
  Networks that down-sample (MFIF-GAN, total stride 4) get cores and halos that are multiples of
  the stride, so every window starts on the same sampling grid as the whole image.
* **Global statistics** (:func:`channel_means`).  A squeeze-excitation mean is accumulated over the
  cores of a pre-pass (float64 sums), one pass per SE layer in network order, because each layer's
  mean depends on the scales of the layers before it.  A pass only needs the halo of the layers up
  to that SE, so early passes are cheap.  The real pass then applies those fixed scales.  GACN can
  keep its pre-SE feature maps between the passes instead of recomputing them (:class:`TiledGACN`,
  a budget of :data:`FEATURE_CACHE_BYTES`, 1 GiB): memory is then bounded by the tile *plus* that
  budget; images whose maps do not fit are recomputed, bounded by the tile alone.
* **BatchNorm** is no global statistic at inference: every fuser runs BN with its moving
  statistics (GACN, MFIF-GAN and GIPC-GAN in inference mode, spec ``gacn.md`` §6.1, ``mfif_gan.md``
  §6, ``gipc_gan.md`` §3); MFF-GAN's generator has no BN (its always-training BN is the critic's).

Equality: cores are computed by the same kernels on the same inputs; they can differ from the
whole-image result only by float summation order (oneDNN may block a conv differently for a
different window width, and the SE means are summed tile by tile instead of by one reduction).
``tests/test_tiling.py`` states the bound per model.

Model adapters at the end: :class:`TiledGACN` and :class:`TiledMFIFGAN` re-sequence the models' own
layers with the SE scales as inputs; MFF-GAN and GIPC-GAN are purely local and tile as they are.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf

from fusion_tf.errors import FusionError

#: smallest accepted core size: smaller tiles only multiply the halo overhead
MIN_TILE = 16


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------
def round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def receptive_halo(layers: Iterable[tuple[int, int]]) -> int:
    """Receptive-field radius in image pixels of a chain of layers.

    Each entry is ``(radius, spacing)``: the layer's kernel radius on its *input* grid (3×3 → 1,
    7×7 → 3, a 4×4 stride-2 transposed conv → 1 coarse cell) and that grid's pixel spacing in image
    pixels (1 at full resolution, 4 after two stride-2 convs).  The radius is ``Σ radius·spacing``.
    """
    return sum(r * s for r, s in layers)


def check_tile(tile) -> int | None:
    """Validate the ``tile`` option (None = whole image); one-line error for nonsense values."""
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < MIN_TILE:
        raise FusionError(f"--tile must be a whole number of pixels ≥ {MIN_TILE}, got {tile!r}")
    return int(tile)


@dataclass(frozen=True)
class Tile:
    """A core ``[y0, y1) × [x0, x1)`` and its window (core + halo, clipped to the image)."""

    y0: int
    y1: int
    x0: int
    x1: int
    wy0: int
    wy1: int
    wx0: int
    wx1: int

    def window(self, array: np.ndarray) -> np.ndarray:
        return array[self.wy0 : self.wy1, self.wx0 : self.wx1]


def tile_grid(height: int, width: int, tile: int, halo: int, align: int = 1) -> list[Tile]:
    """Row-major tiles covering H×W; core size and halo rounded up to multiples of ``align``."""
    size, halo = round_up(tile, align), round_up(halo, align)
    tiles = []
    for y0 in range(0, height, size):
        y1 = min(y0 + size, height)
        for x0 in range(0, width, size):
            x1 = min(x0 + size, width)
            tiles.append(Tile(y0, y1, x0, x1, max(0, y0 - halo), min(height, y1 + halo),
                              max(0, x0 - halo), min(width, x1 + halo)))
    return tiles


def covers_in_one(height: int, width: int, tile: int | None) -> bool:
    """Whether the image fits in one core (then tiling is pointless and whole-image inference runs)."""
    return tile is None or (height <= tile and width <= tile)


# ----------------------------------------------------------------------------------------------
# Running tiles
# ----------------------------------------------------------------------------------------------
def default_network(fn: Callable, input_signature: Sequence[tf.TensorSpec], name: str) -> Callable:
    """How adapters compile their graphs unless the fuser passes its backend's factory instead
    (same call shape as :func:`fusion_tf.inference.backends.network` with the weights bound)."""
    return tf.function(fn, input_signature=input_signature)


def stitch(run: Callable, arrays: Sequence[np.ndarray], tiles: Sequence[Tile],
           out_size: tuple[int, int] | None = None, pass_tile: bool = False):
    """Run ``run(*windows)`` (``run(*windows, tile)`` with ``pass_tile``) on every tile and assemble
    the cores of its output(s).

    ``arrays`` are H×W(×C) inputs cut the same way; ``run`` returns one array or a tuple of arrays
    of shape h×w(×C), aligned with the window's top-left corner.  ``out_size`` (default H×W) lets an
    output overhang the image at the bottom/right border (MFIF-GAN: 4·⌈H/4⌉): a core that touches
    the border keeps everything its window produced beyond it.
    """
    height, width = arrays[0].shape[:2]
    out_h, out_w = out_size or (height, width)
    outputs, single = None, False
    for t in tiles:
        result = run(*(t.window(a) for a in arrays), *((t,) if pass_tile else ()))
        single = not isinstance(result, tuple)
        parts = (result,) if single else result
        if outputs is None:
            outputs = [np.empty((out_h, out_w) + p.shape[2:], p.dtype) for p in parts]
        for out, part in zip(outputs, parts):
            ye = t.y1 - t.wy0 if t.y1 < height else part.shape[0]
            xe = t.x1 - t.wx0 if t.x1 < width else part.shape[1]
            if t.wy0 + ye > out_h or t.wx0 + xe > out_w:
                raise ValueError(f"tile output {part.shape} overruns the {out_h}×{out_w} result")
            out[t.y0 : t.wy0 + ye, t.x0 : t.wx0 + xe] = part[t.y0 - t.wy0 : ye, t.x0 - t.wx0 : xe]
    return outputs[0] if single else tuple(outputs)


def rowwise(fn: Callable, *arrays: np.ndarray, rows: int | None) -> np.ndarray:
    """``fn(*arrays)`` computed on bands of ``rows`` rows (None: in one go) into one output.

    For pixel-wise ``fn`` (colour conversions, blending by a map, rounding) the result is identical,
    but float64 temporaries exist for one band only: at 4000×3000 one H×W×3 float64 temporary is
    288 MB, and the colour pipelines chain several.
    """
    if rows is None:
        return fn(*arrays)
    height, out = arrays[0].shape[0], None
    for r0 in range(0, height, rows):
        part = fn(*(a[r0 : r0 + rows] for a in arrays))
        if out is None:
            out = np.empty((height,) + part.shape[1:], part.dtype)
        out[r0 : r0 + rows] = part
    return out


def channel_means(probe: Callable, arrays: Sequence[np.ndarray], tiles: Sequence[Tile], stride: int = 1) -> np.ndarray:
    """Per-channel spatial mean over the whole image of a map computed tile by tile.

    ``probe(*windows)`` returns a (B, h, w, C) map on the window's grid at ``stride`` (cores and
    windows must be aligned to it).  Sums over the cores are accumulated in float64; returns (B, C)
    float64, the mean over all ⌈H/s⌉·⌈W/s⌉ positions like a whole-image ``reduce_mean``.
    """
    height, width = arrays[0].shape[:2]
    total, count = None, 0
    for t in tiles:
        fmap = np.asarray(probe(*(t.window(a) for a in arrays)))
        cy0, cx0 = (t.y0 - t.wy0) // stride, (t.x0 - t.wx0) // stride
        cy1, cx1 = -(-(t.y1 - t.wy0) // stride), -(-(t.x1 - t.wx0) // stride)
        core = fmap[:, cy0:cy1, cx0:cx1, :]
        part = core.sum(axis=(1, 2), dtype=np.float64)
        total = part if total is None else total + part
        count += core.shape[1] * core.shape[2]
    expected = -(-height // stride) * -(-width // stride)
    if count != expected:
        raise ValueError(f"tile cores cover {count} positions, the map has {expected}")
    return total / count


# ----------------------------------------------------------------------------------------------
# Luma generators (MFF-GAN, GIPC-GAN): purely local
# ----------------------------------------------------------------------------------------------
def generator_halo(generator) -> int:
    """Receptive-field radius of an MFF-GAN or GIPC-GAN generator (no global operations in either).

    MFF-GAN: 5×5 then three 3×3 convs on the longest path (the 1×1 exchanges and head add nothing):
    2 + 1 + 1 + 1 = 5, the model's own ``halo``.  GIPC-GAN: four 3×3 encoder blocks, each fed by
    the previous block of both paths (both exchange wirings keep that depth); the ``paper`` variant
    adds a 1×1 feature generator, three 3×3 decoder blocks and a 3×3 output conv (4 + 3 + 1 = 8),
    the ``count_matched`` variant a 1×1 head (4).
    """
    stated = getattr(generator, "halo", None)
    if stated is not None:
        return int(stated)
    from fusion_tf.models.gipcgan import GIPCGANGenerator

    if not isinstance(generator, GIPCGANGenerator):
        raise TypeError(f"no receptive field known for {type(generator).__name__}")
    convs = [b.conv for b in generator.encoder_near] + ([generator.feature.conv] if generator.feature else [])
    convs += [b.conv for b in generator.decoder] + [generator.output_conv]
    return receptive_halo((c.kernel_size[0] // 2, 1) for c in convs)


# ----------------------------------------------------------------------------------------------
# GACN: four channel-SE means per image from a pre-pass
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# MFIF-GAN: nine channel-SE means (per colour plane) from a pre-pass, stride-4 alignment
# ----------------------------------------------------------------------------------------------
class TiledMFIFGAN:
    """MFIF-GAN's BN-folded generator (:class:`~fusion_tf.models.mfifgan.FoldedGenerator`) on tiles.

    Each of the n SE blocks (9 in the original) averages its 256-channel map over the whole
    quarter-resolution image, separately for each of the six colour planes, so the pre-pass has n
    passes; pass k runs the encoder up to block k.  Total stride 4: cores, halos and hence window
    origins are multiples of 4, so the stride-2 convs (PyTorch padding 1) sample the same grid.

    Halo: 7×7 stem (3) + two stride-2 3×3 convs (1 at spacing 1, 1 at spacing 2) + 2n 3×3 convs at
    spacing 4 (8n) + two 4×4 stride-2 transposed convs (one coarse cell each: 4 and 2) + 7×7 head (3)
    = 15 + 8n: 87 for n = 9, rounded up to 88.  (Worked through index by index the transposed convs
    reach 84 pixels up/left and 81 down/right before the head, within that bound.)
    """

    STRIDE = 4

    def __init__(self, folded, tile: int, network: Callable | None = None):
        self.folded, self.tile = folded, tile
        network = network or default_network
        n = len(folded.blocks)
        self.halo = round_up(receptive_halo([(3, 1), (1, 1), (1, 2)] + [(1, 4)] * (2 * n) + [(1, 4), (1, 2), (3, 1)]),
                             self.STRIDE)
        image = tf.TensorSpec([1, None, None, 3], tf.float32)
        scale = tf.TensorSpec([6, 256], tf.float32)
        self._probes = [network(self._probe, [image, image] + [scale] * k, f"mfifgan-tiled-probe{k}") for k in range(n)]
        self._full = network(self._forward, [image, image] + [scale] * n, "mfifgan-tiled")

    def probe_halo(self, k: int) -> int:
        """Radius of block k's pre-SE map: stem, two down-sampling convs and 2(k + 1) block convs."""
        return round_up(receptive_halo([(3, 1), (1, 1), (1, 2)] + [(1, 4)] * (2 * k + 2)), self.STRIDE)

    def encode(self, a, b, scales):
        """Folded encoder with fixed SE scales (6, 256); with fewer scales than blocks, the pre-SE
        map of the next block.  Same ops and order as ``FoldedGenerator.__call__``."""
        f = self.folded
        h, w = tf.shape(a)[1], tf.shape(a)[2]
        x = tf.reshape(tf.transpose(tf.concat([a, b], axis=-1), [3, 0, 1, 2]), [-1, h, w, 1])
        x = f._conv_relu(x, *f.stem)
        x = f._conv_relu(x, *f.down1, stride=2, pad=1)
        x = f._conv_relu(x, *f.down2, stride=2, pad=1)
        for i, (k1, b1, k2, b2, _, _) in enumerate(f.blocks):
            y = f._conv_relu(x, k1, b1)
            y = tf.nn.bias_add(tf.nn.conv2d(y, k2, 1, "SAME"), b2)
            if i == len(scales):
                return y
            x = tf.nn.relu(y * scales[i][:, None, None, :] + x)
        return x

    def _probe(self, a, b, *scales):
        return self.encode(a, b, list(scales))

    def _forward(self, a, b, *scales):
        f = self.folded
        x = self.encode(a, b, list(scales))
        feats = tf.reshape(x, tf.concat([[6, 1], tf.shape(x)[1:]], axis=0))
        x = tf.concat([(feats[0] + feats[1] + feats[2]) / 3.0, (feats[3] + feats[4] + feats[5]) / 3.0], axis=-1)
        x = f._deconv_relu(x, *f.up1)
        x = f._deconv_relu(x, *f.up2)
        return tf.sigmoid(tf.nn.conv2d(x, f.head, 1, "SAME"))

    def scales(self, a: np.ndarray, b: np.ndarray) -> list[tf.Tensor]:
        """SE scales (6, 256) of every block for one pair in network range (H×W×3 float32)."""
        found = []
        for k, (_, _, _, _, fc0, fc2) in enumerate(self.folded.blocks):
            probe = self._probes[k]
            run = lambda wa, wb: probe(wa[None], wb[None], *found)  # noqa: E731
            tiles = tile_grid(a.shape[0], a.shape[1], self.tile, self.probe_halo(k), self.STRIDE)
            mean = tf.constant(channel_means(run, [a, b], tiles, self.STRIDE), tf.float32)
            found.append(tf.sigmoid(tf.matmul(tf.nn.relu(tf.matmul(mean, fc0)), fc2)))
        return found

    def focus_map(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The generator's raw map (H′×W′, H′ = 4·⌈H/4⌉) for two H×W×3 network-range images."""
        scales = self.scales(a, b)
        height, width = a.shape[:2]
        out_size = (round_up(height, self.STRIDE), round_up(width, self.STRIDE))

        def run(wa, wb):
            return np.asarray(self._full(wa[None], wb[None], *scales))[0, ..., 0]

        return stitch(run, [a, b], tile_grid(height, width, self.tile, self.halo, self.STRIDE), out_size)
