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

This module is the geometry and needs no TensorFlow (a tiled run on cached ONNX graphs loads none).
The model adapters, which re-sequence the models' own layers with the SE scales as inputs, are
:class:`~fusion_tf.inference.gacn_tiled.TiledGACN` and
:class:`~fusion_tf.inference.mfifgan_tiled.TiledMFIFGAN`; MFF-GAN and GIPC-GAN are purely local and
tile as they are (:func:`generator_halo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

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
def default_network(fn: Callable, input_signature: Sequence, name: str) -> Callable:
    """How adapters compile their graphs unless the fuser passes its backend's factory instead
    (same call shape as :func:`fusion_tf.inference.backends.network` with the weights bound)."""
    import tensorflow as tf

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
