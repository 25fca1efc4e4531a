"""MFIF-GAN on tiles (``--tile``): nine channel-SE means (per colour plane) from a pre-pass, with
cores and halos aligned to the network's total stride of 4.

The principle (halos, float64 SE sums, equality with whole-image inference) is
:mod:`fusion_tf.inference.tiling`'s, which also cuts and stitches the tiles.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from fusion_tf.inference.tiling import channel_means, default_network, receptive_halo, round_up, stitch, tile_grid


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
