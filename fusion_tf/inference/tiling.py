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
  to that SE, so early passes are cheap.  The real pass then applies those fixed scales.
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
           out_size: tuple[int, int] | None = None):
    """Run ``run(*windows)`` on every tile and assemble the cores of its output(s).

    ``arrays`` are H×W(×C) inputs cut the same way; ``run`` returns one array or a tuple of arrays
    of shape h×w(×C), aligned with the window's top-left corner.  ``out_size`` (default H×W) lets an
    output overhang the image at the bottom/right border (MFIF-GAN: 4·⌈H/4⌉): a core that touches
    the border keeps everything its window produced beyond it.
    """
    height, width = arrays[0].shape[:2]
    out_h, out_w = out_size or (height, width)
    outputs, single = None, False
    for t in tiles:
        result = run(*(t.window(a) for a in arrays))
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
def excitation(se, mean) -> tf.Tensor:
    """A channel SE's scales for a given (B, C) mean: ``sigmoid(fc₂(ReLU(fc₁(mean))))``."""
    return tf.sigmoid(se.fc_2(tf.nn.relu(se.fc_0(tf.cast(mean, tf.float32)))))


class TiledGACN:
    """GACN on tiles.  The feature extractor's four channel SEs (``se_0``–``se_3``) need whole-image
    means, so each image gets a four-pass pre-pass (:meth:`feature_scales`); the rest is local.

    Halo (receptive-field radius), the longest path from a grey input pixel to ``output_bgf``:
    four 3×3 feature convs (4); SF = backward differences (1) + 11×11 window sum (5): 6; decision
    path = SSE 7×7 (3) + four × (3×3 conv (1) + SSE 7×7 (3)): 19; boundary guided filter = two
    nested 7×7 box means (6; the 9×9 blur of the map, 4, is shorter): 6.  Total 4 + 6 + 19 + 6 = 35.
    The pre-pass for ``se_i`` needs the i + 1 feature convs only.
    """

    HALO = receptive_halo([(1, 1)] * 4 + [(6, 1)] + [(3, 1)] + [(1, 1), (3, 1)] * 4 + [(6, 1)])

    def __init__(self, model, tile: int, network: Callable | None = None):
        self.model, self.tile = model, tile
        network = network or default_network
        grey = tf.TensorSpec([1, None, None, 1], tf.float32)
        scale = tf.TensorSpec([1, 16], tf.float32)
        # k = 0..3: the pre-SE map of stage k (pre-pass probes); k = 4: the 64-channel features.
        # One trace per k, dynamic H and W, on the fuser's backend.
        self._features = [network(self._probe, [grey] + [scale] * k, f"gacn-tiled-features{k}") for k in range(5)]
        feats = tf.TensorSpec([1, None, None, 64], tf.float32)
        # SF, decision path and guided filter stay in TF (their sigmoid(1000·x) amplify round-off)
        self._decide = tf.function(self._decide_graph, input_signature=[feats, feats, grey, grey])

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

    def _decide_graph(self, f1, f2, g1, g2):
        from fusion_tf.models.gacn import spatial_frequency

        return self.model.decide(spatial_frequency(f1), spatial_frequency(f2), g1, g2, training=False)

    def grid(self, shape, halo: int) -> list[Tile]:
        return tile_grid(shape[0], shape[1], self.tile, halo)

    def feature_scales(self, grey: np.ndarray) -> list[tf.Tensor]:
        """The four SE scale vectors (1, 16) of one grey H×W image, pass by pass."""
        scales = []
        for i, (_, se) in enumerate(self.model.feature_stages):
            probe = self._features[i]
            run = lambda w: probe(w[None, :, :, None], *scales)  # noqa: E731
            scales.append(excitation(se, channel_means(run, [grey], self.grid(grey.shape, i + 1))))
        return scales

    def maps(self, g1: np.ndarray, g2: np.ndarray, scales1=None, scales2=None) -> tuple[np.ndarray, np.ndarray]:
        """``(output_origin, output_bgf)`` H×W float32 for two grey H×W images (scales: pre-computed)."""
        scales1 = scales1 if scales1 is not None else self.feature_scales(g1)
        scales2 = scales2 if scales2 is not None else self.feature_scales(g2)

        def run(w1, w2):
            w1, w2 = w1[None, :, :, None], w2[None, :, :, None]
            f1, f2 = self._features[4](w1, *scales1), self._features[4](w2, *scales2)
            origin, bgf = self._decide(f1, f2, w1, w2)
            return origin.numpy()[0, ..., 0], bgf.numpy()[0, ..., 0]

        return stitch(run, [g1, g2], self.grid(g1.shape, self.HALO))


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
