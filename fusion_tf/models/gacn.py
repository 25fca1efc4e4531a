"""GACN (Ma et al., Neurocomputing 2022) as its PyTorch original codes it (``GACNFuseNet``).

Facts: ``../shared/spec/gacn.md`` §2.  Where paper and code differ (block order, SE widths, SF without
√ and /121, k = 1000 sigmoids) the code is followed, because the released weights depend on it.

The forward pass is split into three public stages so multi-image inference can reuse them without
re-running work: :meth:`GACN.spatial_frequency_of` (siamese features → per-channel SF, once per
image), :meth:`GACN.decide` (SF pair → initial and rectified decision map) and :func:`fuse_with_map`.
Layer names are the PyTorch module names, so the state dict maps by name
(:func:`fusion_tf.weights.torch_npz.load_gacn_npz`).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fusion_tf.core import ops
from fusion_tf.errors import WeightsError
from fusion_tf.models.blocks import ChannelSE, ConvReluBN, SpatialSE

FEATURES = 16
SF_RADIUS = 5
STEEPNESS = 1000.0
BLUR_RADIUS, BLUR_SIGMA = 4, 8.0
LOW_THRESHOLD, HIGH_THRESHOLD = 0.1, 0.8
GF_RADIUS, GF_EPS = 3, 0.1

#: 9×9 σ 8 Gaussian of the boundary blur, normalised (== intermediates/gaussblur_sigma8_radius4_kernel.npy).
BOUNDARY_BLUR_KERNEL = ops.gaussian_kernel(BLUR_RADIUS, BLUR_SIGMA).astype(np.float32)


_BACKWARD_DIFF_X = np.array([[1.0, -1.0, 0.0]], np.float32)
_BACKWARD_DIFF_Y = _BACKWARD_DIFF_X.T

# ----------------------------------------------------------------------------------------------
# Parameter-free stages
# ----------------------------------------------------------------------------------------------
def spatial_frequency(features: tf.Tensor) -> tf.Tensor:
    """Per-channel 'spatial frequency' as coded: 11×11 zero-padded **sum** of squared 1-px differences.

    Left/up neighbours come from zero-filled shifts, so the first row/column see a jump to 0.  No √ and
    no division by 121 (paper Eq. 1–3 differ; the weights were trained with this form).
    """
    # (F(x−1) − F(x)) as a 3-tap zero-padded correlation: exact (±1 weights) and ~2× faster on CPU
    # than materialising the two shifted copies of a 64-channel tensor.
    grad = tf.square(ops.filter2d(features, _BACKWARD_DIFF_X)) + tf.square(ops.filter2d(features, _BACKWARD_DIFF_Y))
    return ops.window_sum(grad, SF_RADIUS)


def bimap(sf1: tf.Tensor, sf2: tf.Tensor) -> tf.Tensor:
    """The decision path's input: per channel, ``sigmoid(1000·(SF₁ − SF₂))`` (≈ 1 where image 1 is sharper)."""
    return tf.sigmoid(STEEPNESS * (sf1 - sf2))


def boundary_map(blurred: tf.Tensor) -> tf.Tensor:
    """Weight of the guided-filter result: 1 inside the uncertain band 0.1 ≤ B ≤ 0.8, decaying outside.

    The masks are hard comparisons (no gradient through them), the rest stays differentiable.
    """
    m1 = tf.cast(blurred > HIGH_THRESHOLD, blurred.dtype)
    m2 = tf.cast(blurred < LOW_THRESHOLD, blurred.dtype)
    m3 = m1 * blurred + m2 * (1.0 - blurred)
    return 1.0 - tf.abs(2.0 * (blurred * m3 + 0.5 * (1.0 - m3)) - 1.0)


def boundary_guided_filter(origin: tf.Tensor, img1: tf.Tensor, img2: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Rectify the initial map near focus boundaries (spec §2.5); returns ``(output_bgf, output_blur)``.

    The guide is the grey image fused with the *initial* map, so the filter snaps the map to edges of
    the would-be result.  Zero-padded blur (the map drops at image borders, as in the original).
    """
    blurred = ops.filter2d(origin, BOUNDARY_BLUR_KERNEL, "zero")
    boundary = boundary_map(blurred)
    temp_fused = img1 * origin + (1.0 - origin) * img2
    filtered = ops.guided_filter(temp_fused, origin, GF_RADIUS, GF_EPS)
    return filtered * boundary + origin * (1.0 - boundary), blurred


def fuse_with_map(decision: tf.Tensor, img1, img2):
    """``d·img1 + (1 − d)·img2`` — GACN has no learned decoder; the map weights every channel alike."""
    return decision * img1 + (1.0 - decision) * img2


# ----------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------
class GACN(keras.Model):
    """Siamese SE-dense feature path + SF module + SSE decision path + boundary guided filter.

    ``call((img1, img2))`` takes two grey (N,H,W,1) images in [0, 1] (not normalised) and returns
    ``(output_origin, output_bgf, fused)``; DM = 1 takes img1.  Pass ``training`` explicitly: the
    feature extractor runs once per image (two BN batch-statistics updates per step, as the original).
    """

    def __init__(self, name: str = "gacn", **kwargs):
        super().__init__(name=name, **kwargs)
        in_ch = [1, FEATURES, 2 * FEATURES, 3 * FEATURES]
        self.feature_extraction_conv0 = ConvReluBN(FEATURES, in_ch[0], name="feature_extraction_conv0")
        self.feature_extraction_conv1 = ConvReluBN(FEATURES, in_ch[1], name="feature_extraction_conv1")
        self.feature_extraction_conv2 = ConvReluBN(FEATURES, in_ch[2], name="feature_extraction_conv2")
        self.feature_extraction_conv3 = ConvReluBN(FEATURES, in_ch[3], name="feature_extraction_conv3")
        self.se_0 = ChannelSE(FEATURES, 8, name="se_0")
        self.se_1 = ChannelSE(FEATURES, 8, name="se_1")
        self.se_2 = ChannelSE(FEATURES, 8, name="se_2")
        self.se_3 = ChannelSE(FEATURES, 8, name="se_3")
        self.se_4 = SpatialSE(64, name="se_4")
        self.decision_path_conv1 = ConvReluBN(48, 64, name="decision_path_conv1")
        self.se_5 = SpatialSE(48, name="se_5")
        self.decision_path_conv2 = ConvReluBN(32, 48, name="decision_path_conv2")
        self.se_6 = SpatialSE(32, name="se_6")
        self.decision_path_conv3 = ConvReluBN(16, 32, name="decision_path_conv3")
        self.se_7 = SpatialSE(16, name="se_7")
        self.decision_path_conv4 = ConvReluBN(1, 16, name="decision_path_conv4")
        self.se_8 = SpatialSE(1, name="se_8")

    @property
    def feature_stages(self):
        return [(getattr(self, f"feature_extraction_conv{i}"), getattr(self, f"se_{i}")) for i in range(4)]

    @property
    def decision_stages(self):
        return [(getattr(self, f"decision_path_conv{i}"), getattr(self, f"se_{i + 4}")) for i in range(1, 5)]

    def build(self, input_shape=None):
        # Explicit build: weights exist before the first call (weight import, optimizer.build).
        for conv, se in self.feature_stages + self.decision_stages:
            conv.build()
            se.build()
        self.se_4.build()
        self.built = True

    # -- stages ------------------------------------------------------------------------------
    def feature_blocks(self, x, training=False, taps: dict | None = None, tag: str = "") -> list:
        """The dense SE feature extractor for ONE image batch: its four 16-channel blocks ``[f0, f1, f2, f3]``."""
        feats = []
        inp = x
        for i, (conv, se) in enumerate(self.feature_stages):
            c = conv(inp, training=training)
            f = se(c)
            feats.append(f)
            if taps is not None:
                taps[f"act_feature_extraction_conv{i}{tag}"] = c
                taps[f"act_se_{i}{tag}"] = f
            if len(feats) < len(self.feature_stages):
                inp = tf.concat(feats, axis=-1)
        return feats

    def extract_features(self, x, training=False, taps: dict | None = None, tag: str = ""):
        """The 64 feature channels ``[f0, f1, f2, f3]`` of one image batch."""
        return tf.concat(self.feature_blocks(x, training=training, taps=taps, tag=tag), axis=-1)

    def spatial_frequency_blocks(self, x, training=False) -> list:
        """SF of one grey image batch, per 16-channel feature block (SF is per channel).

        Why blocks: SF's temporaries (differences, squares, window sums) are then 16 channels wide, not
        64, which lowered the peak memory of SF on a 1600×1200 frame by about 0.6 GB (2.58 → 2.00 GiB
        process peak); the values are those of SF on the concatenated features."""
        return [spatial_frequency(f) for f in self.feature_blocks(x, training=training)]

    def spatial_frequency_of(self, x, training=False):
        """SF of one grey image batch: what the decision path compares (64 channels)."""
        return tf.concat(self.spatial_frequency_blocks(x, training=training), axis=-1)

    def attended_bimap_against(self, sf_ref_blocks, x, training=False):
        """``se_4(bimap(SF_ref, SF(x)))``, the decision path's first step, for a reference whose SF
        blocks are known (decision calibration).  Block by block, so neither SF(x) nor its
        temporaries exist at full 64-channel width, and the bimap dies inside this graph: at
        1600×1200 each 64-channel tensor is 491 MB, and the peak memory is a handful of them."""
        blocks = self.spatial_frequency_blocks(x, training=training)
        return self.se_4(tf.concat([bimap(r, s) for r, s in zip(sf_ref_blocks, blocks)], axis=-1))

    def decide(self, sf1, sf2, img1, img2, training=False, taps: dict | None = None):
        """Decision path on ``sigmoid(1000·(SF₁ − SF₂))`` → ``(output_origin, output_bgf)``."""
        b = bimap(sf1, sf2)
        x = self.se_4(b)
        if taps is not None:
            taps["bimap"], taps["act_se_4"] = b, x
        return self.decide_from_attended(x, img1, img2, training=training, taps=taps)

    def decide_from_attended(self, x, img1, img2, training=False, taps: dict | None = None):
        """:meth:`decide` after its first step (``x = se_4(bimap)``): the decision convs, the steep
        sigmoid and the boundary guided filter → ``(output_origin, output_bgf)``."""
        for i, (conv, se) in enumerate(self.decision_stages, start=1):
            c = conv(x, training=training)
            x = se(c)
            if taps is not None:
                taps[f"act_decision_path_conv{i}"], taps[f"act_se_{i + 4}"] = c, x
        origin = tf.sigmoid(STEEPNESS * x)
        bgf, blurred = boundary_guided_filter(origin, img1, img2)
        if taps is not None:
            taps.update(output_origin=origin, output_blur=blurred, output_bgf=bgf)
        return origin, bgf

    def call(self, inputs, training=False):
        img1, img2 = inputs
        return self.forward_with_taps(img1, img2, training=training)

    def forward_with_taps(self, img1, img2, training=False, taps: dict | None = None):
        """The full forward pass; fills ``taps`` with every named intermediate when given (parity tests)."""
        cat1 = self.extract_features(img1, training=training, taps=taps, tag="_img1")
        cat2 = self.extract_features(img2, training=training, taps=taps, tag="_img2")
        sf1, sf2 = spatial_frequency(cat1), spatial_frequency(cat2)
        if taps is not None:
            taps.update(cat1=cat1, cat2=cat2, sf1=sf1)
        origin, bgf = self.decide(sf1, sf2, img1, img2, training=training, taps=taps)
        return origin, bgf, fuse_with_map(bgf, img1, img2)


def build_gacn() -> GACN:
    """A built GACN with fresh PyTorch-style initial weights (68,820 trainable + 322 BN statistics)."""
    model = GACN()
    model.build()
    return model


def build_networks() -> dict:
    """Registry hook: the networks of this model by name (for parameter listings)."""
    return {"gacn": build_gacn()}


def save_weights(model: GACN, path: str | os.PathLike) -> Path:
    """Save as Keras ``.weights.h5`` (the name must end with it; Keras refuses other suffixes)."""
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise WeightsError(f"{path}: weights file name must end with .weights.h5")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(path))
    return path
