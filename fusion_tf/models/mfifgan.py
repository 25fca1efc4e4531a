"""MFIF-GAN networks (Wang et al., Signal Processing: Image Communication 2021) as the PyTorch code builds them.

Facts: ``../shared/spec/mfif_gan.md`` §2–§3, §7.  Key points that decide the structure here:

* **One encoder for six colour planes.**  ``Generator`` splits A and B into R, G, B planes and runs the
  *same* encoder on each in a **separate call** while training (every call has its own BN batch
  statistics and its own moving-statistic update, as in the original).  In inference mode BN uses its
  moving statistics, so the six planes can be stacked into one batch — identical numbers, bigger GEMMs.
* **PyTorch padding semantics.**  Stride-2 convs and all critic convs use explicit ``ZeroPadding2D(p)``
  + ``valid``: Keras ``same`` pads even inputs only at the bottom/right and would shift every feature.
  ``ConvTranspose2d(4, 2, padding=1)`` is exactly ``Conv2DTranspose(4, 2, "same")``.
* **Initialisation** is PyTorch's default (kaiming-uniform a=√5 kernels, U(±1/√fan_in) biases).

Layer attribute names follow the PyTorch state-dict paths (``line1.0.line.9.se.fc.0`` → ``blocks[0].se.fc_0``)
so :mod:`fusion_tf.weights.mfifgan_npz` maps them one to one.  :func:`fold_generator` turns a trained
generator into a BN-free inference graph (conv + bias + ReLU, which TF fuses into one op).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from fusion_tf.models.blocks import ChannelSE, TorchUniformBias, torch_kernel_init

BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5  # PyTorch momentum 0.1, eps 1e-5
CONV_DIM, SE_BLOCKS, SE_REDUCTION = 64, 9, 16
D_VARIANTS = ("coded", "paper8")


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _conv(filters: int, kernel: int, in_channels: int, name: str, strides: int = 1, padding: str = "same",
          use_bias: bool = False) -> layers.Conv2D:
    fan_in = in_channels * kernel * kernel
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias, name=name,
                         kernel_initializer=torch_kernel_init(),
                         bias_initializer=TorchUniformBias(fan_in) if use_bias else "zeros")


def torch_pad(x: tf.Tensor, p: int) -> tf.Tensor:
    """PyTorch ``padding=p``: p zeros on *every* side (what ``same`` does not do for stride 2)."""
    return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])


# ----------------------------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------------------------
class SEBasicBlock(layers.Layer):
    """conv3×3 → BN → ReLU → conv3×3 → BN → channel SE (r 16) → + identity → ReLU (stride 1, no downsample)."""

    def __init__(self, channels: int = 256, reduction: int = SE_REDUCTION, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.channels = channels
        self.conv1 = _conv(channels, 3, channels, "conv1")
        self.bn1 = _bn("bn1")
        self.conv2 = _conv(channels, 3, channels, "conv2")
        self.bn2 = _bn("bn2")
        self.se = ChannelSE(channels, reduction, name="se")

    def build(self, input_shape=None):
        shape = (None, None, None, self.channels)
        for layer in (self.conv1, self.bn1, self.conv2, self.bn2, self.se):
            layer.build(shape)
        self.built = True

    def call(self, x, training=False):
        out = tf.nn.relu(self.bn1(self.conv1(x), training=training))
        out = self.se(self.bn2(self.conv2(out), training=training))
        return tf.nn.relu(out + x)


class Encoder(keras.Model):
    """The shared per-plane encoder (``line1.0.line``): 7×7 stem, two stride-2 convs, nine SE blocks.

    H×W×1 → ⌈⌈H/2⌉/2⌉ × ⌈⌈W/2⌉/2⌉ × 256.  11,072,448 trainable parameters.
    ``se_blocks`` (default 9, as hard-coded in the original) exists for ablations and fast smoke tests.
    """

    def __init__(self, se_blocks: int = SE_BLOCKS, name: str = "line1", **kwargs):
        super().__init__(name=name, **kwargs)
        c = CONV_DIM
        self.conv0, self.bn1 = _conv(c, 7, 1, "conv0"), _bn("bn1")
        self.conv3, self.bn4 = _conv(2 * c, 3, c, "conv3", strides=2, padding="valid"), _bn("bn4")
        self.conv6, self.bn7 = _conv(4 * c, 3, 2 * c, "conv6", strides=2, padding="valid"), _bn("bn7")
        self.blocks = [SEBasicBlock(4 * c, name=f"se_block{9 + i}") for i in range(se_blocks)]

    def build(self, input_shape=None):
        c = CONV_DIM
        for conv, bn, cin in ((self.conv0, self.bn1, 1), (self.conv3, self.bn4, c), (self.conv6, self.bn7, 2 * c)):
            conv.build((None, None, None, cin))
            bn.build((None, None, None, conv.filters))
        for block in self.blocks:
            block.build()
        self.built = True

    def call(self, x, training=False):
        x = tf.nn.relu(self.bn1(self.conv0(x), training=training))
        x = tf.nn.relu(self.bn4(self.conv3(torch_pad(x, 1)), training=training))
        x = tf.nn.relu(self.bn7(self.conv6(torch_pad(x, 1)), training=training))
        for block in self.blocks:
            x = block(x, training=training)
        return x


class Generator(keras.Model):
    """Focus-map generator; input ``[A, B]`` (N,H,W,3) in [−1,1], output (N,H',W',1) in (0,1), 1 → take A.

    H' = 4·⌈⌈H/2⌉/2⌉ (= H for multiples of 4).  13,700,928 trainable + 10,880 BN moving statistics.
    """

    def __init__(self, se_blocks: int = SE_BLOCKS, name: str = "generator", **kwargs):
        super().__init__(name=name, **kwargs)
        self.line1 = Encoder(se_blocks)
        self.deconv0, self.bn1 = self._deconv(256, 512, "deconv0"), _bn("dec_bn1")
        self.deconv3, self.bn4 = self._deconv(128, 256, "deconv3"), _bn("dec_bn4")
        self.conv6 = _conv(1, 7, 128, "conv6")

    @staticmethod
    def _deconv(filters: int, in_channels: int, name: str) -> layers.Conv2DTranspose:
        # PyTorch ConvTranspose2d(k4, s2, p1): out = 2·in, the same alignment as Keras "same" here.
        return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False, name=name,
                                      kernel_initializer=torch_kernel_init())

    def build(self, input_shape=None):
        self.line1.build()
        self.deconv0.build((None, None, None, 512))
        self.bn1.build((None, None, None, 256))
        self.deconv3.build((None, None, None, 256))
        self.bn4.build((None, None, None, 128))
        self.conv6.build((None, None, None, 128))
        self.built = True

    def encode(self, a: tf.Tensor, b: tf.Tensor, training=False) -> tf.Tensor:
        """Per-source features averaged over colour planes, concatenated: (N, h, w, 512)."""
        if training:
            # six separate calls: separate BN batch statistics and six moving-statistic updates (faithful)
            feats = [self.line1(src[..., c : c + 1], training=True) for src in (a, b) for c in range(3)]
            fa = (feats[0] + feats[1] + feats[2]) / 3.0
            fb = (feats[3] + feats[4] + feats[5]) / 3.0
        else:
            # inference BN is a per-channel affine map: one batched call gives the same numbers
            n = tf.shape(a)[0]
            planes = tf.concat([a, b], axis=-1)  # N,H,W,6
            planes = tf.reshape(tf.transpose(planes, [3, 0, 1, 2]), [-1, tf.shape(a)[1], tf.shape(a)[2], 1])
            feats = self.line1(planes, training=False)  # 6N,h,w,256 in plane-major order
            feats = tf.reshape(feats, tf.concat([[6, n], tf.shape(feats)[1:]], axis=0))
            fa = (feats[0] + feats[1] + feats[2]) / 3.0
            fb = (feats[3] + feats[4] + feats[5]) / 3.0
        return tf.concat([fa, fb], axis=-1)

    def decode(self, x: tf.Tensor, training=False) -> tf.Tensor:
        x = tf.nn.relu(self.bn1(self.deconv0(x), training=training))
        x = tf.nn.relu(self.bn4(self.deconv3(x), training=training))
        return tf.sigmoid(self.conv6(x))

    def call(self, inputs, training=False):
        a, b = inputs
        return self.decode(self.encode(a, b, training=training), training=training)


# ----------------------------------------------------------------------------------------------
# Discriminator (critic)
# ----------------------------------------------------------------------------------------------
class Discriminator(keras.Model):
    """Patch critic on concat [A, B, map] (7 channels), sigmoid output; BN always in batch-statistics mode.

    ``variant="coded"`` (default, what the released D is): 7 convs, k4, PyTorch paddings 2,1,1,2,2,2,2,
    LeakyReLU 0.01 then a bias-free BN+ReLU bottleneck; 6×6 output at 256 (3,815,105 parameters).
    ``variant="paper8"`` (paper §3.1: "eight convolutional layers … single element"; no layer table is
    published, so this is our reading): the coded first six convs, a fourth bottleneck conv, and a final
    conv whose kernel covers the remaining map at ``image_size`` → 1×1 at that size (patch mean elsewhere).
    Callers average the output, so both variants plug into the same loss.
    """

    def __init__(self, variant: str = "coded", image_size: int = 256, name: str = "discriminator", **kwargs):
        super().__init__(name=name, **kwargs)
        if variant not in D_VARIANTS:
            raise ValueError(f"variant must be one of {D_VARIANTS}, got {variant!r}")
        self.variant, self.image_size = variant, image_size
        c = CONV_DIM
        # (PyTorch Sequential index, out, in, padding, bias, BN, activation)
        spec = [(0, c, 7, 2, True, False, "lrelu"), (2, 2 * c, c, 1, True, True, "lrelu"),
                (5, 4 * c, 2 * c, 1, True, True, "lrelu")]
        spec += [(8 + 3 * i, 4 * c, 4 * c, 2, False, True, "relu") for i in range(3 if variant == "coded" else 4)]
        self.convs, self.norms, self._plan = [], [], []
        size = image_size
        for idx, cout, cin, pad, bias, bn, act in spec:
            self.convs.append(_conv(cout, 4, cin, f"main_{idx}", strides=2, padding="valid", use_bias=bias))
            if bn:
                self.norms.append(_bn(f"main_{idx + 1}"))
            self._plan.append((cin, pad, bn, act))  # plain values only: layers are tracked in the lists
            size = (size + 2 * pad - 4) // 2 + 1
        last = spec[-1][0] + 3
        if variant == "coded":
            self.head = _conv(1, 4, 4 * c, f"main_{last}", padding="valid", use_bias=True)
            self.head_pad, self.head_kernel = 2, 4
        else:
            self.head = _conv(1, size, 4 * c, f"main_{last}", padding="valid", use_bias=True)
            self.head_pad, self.head_kernel = 0, size

    def _stages(self):
        norms = iter(self.norms)
        for conv, (cin, pad, bn, act) in zip(self.convs, self._plan):
            yield conv, (next(norms) if bn else None), cin, pad, act

    def build(self, input_shape=None):
        for conv, norm, cin, _, _ in self._stages():
            conv.build((None, None, None, cin))
            if norm is not None:
                norm.build((None, None, None, conv.filters))
        self.head.build((None, None, None, 4 * CONV_DIM))
        self.built = True

    def call(self, x, training=None):
        for conv, norm, _, pad, act in self._stages():
            x = conv(torch_pad(x, pad))
            if norm is not None:
                x = norm(x, training=True)  # always batch statistics, as the original (never .eval())
            x = tf.nn.leaky_relu(x, 0.01) if act == "lrelu" else tf.nn.relu(x)
        return tf.sigmoid(self.head(torch_pad(x, self.head_pad)))


def critic_input(a: tf.Tensor, b: tf.Tensor, focus_map: tf.Tensor) -> tf.Tensor:
    """The critic's 7-channel input [A (3), B (3), map (1)]."""
    return tf.concat([a, b, focus_map], axis=-1)


def build_generator(se_blocks: int = SE_BLOCKS) -> Generator:
    g = Generator(se_blocks)
    g.build()
    return g


def build_discriminator(variant: str = "coded", image_size: int = 256) -> Discriminator:
    d = Discriminator(variant, image_size)
    d.build()
    return d


def build_networks() -> dict:
    return {"generator": build_generator(), "discriminator": build_discriminator()}


# ----------------------------------------------------------------------------------------------
# Inference graph with BatchNorm folded into the convolutions
# ----------------------------------------------------------------------------------------------
def _fold(kernel: np.ndarray, bn: layers.BatchNormalization, out_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Conv (no bias) followed by inference BN → one conv with scaled kernel and a bias (float64 maths)."""
    gamma, beta = bn.gamma.numpy().astype(np.float64), bn.beta.numpy().astype(np.float64)
    mean, var = bn.moving_mean.numpy().astype(np.float64), bn.moving_variance.numpy().astype(np.float64)
    scale = gamma / np.sqrt(var + bn.epsilon)
    shape = [1] * kernel.ndim
    shape[out_axis] = -1
    folded = kernel.astype(np.float64) * scale.reshape(shape)
    return folded.astype(np.float32), (beta - mean * scale).astype(np.float32)


class FoldedGenerator(tf.Module):
    """The generator's inference pass with every BN folded into its conv: conv + bias + ReLU only.

    Why: Keras BN is not a fused op, so in inference it costs extra full passes over 256-channel
    maps; folded, TF's remapper fuses Conv2D+BiasAdd+Relu into one oneDNN call.  Equal to
    ``generator(…, training=False)`` within float rounding.  Holds a snapshot of the weights.
    """

    def __init__(self, generator: Generator):
        super().__init__(name="folded_generator")
        enc = generator.line1
        v = lambda arr, name: tf.Variable(arr, trainable=False, name=name)  # noqa: E731
        self.stem = [v(x, f"stem{i}") for i, x in enumerate(_fold(enc.conv0.kernel.numpy(), enc.bn1, 3))]
        self.down1 = [v(x, f"down1_{i}") for i, x in enumerate(_fold(enc.conv3.kernel.numpy(), enc.bn4, 3))]
        self.down2 = [v(x, f"down2_{i}") for i, x in enumerate(_fold(enc.conv6.kernel.numpy(), enc.bn7, 3))]
        self.blocks = []
        for i, blk in enumerate(enc.blocks):
            k1, b1 = _fold(blk.conv1.kernel.numpy(), blk.bn1, 3)
            k2, b2 = _fold(blk.conv2.kernel.numpy(), blk.bn2, 3)
            self.blocks.append([v(k1, f"b{i}k1"), v(b1, f"b{i}b1"), v(k2, f"b{i}k2"), v(b2, f"b{i}b2"),
                                v(blk.se.fc_0.kernel.numpy(), f"b{i}fc0"), v(blk.se.fc_2.kernel.numpy(), f"b{i}fc2")])
        # Conv2DTranspose kernels are (kh, kw, out, in): the output channel axis is 2
        self.up1 = [v(x, f"up1_{i}") for i, x in enumerate(_fold(generator.deconv0.kernel.numpy(), generator.bn1, 2))]
        self.up2 = [v(x, f"up2_{i}") for i, x in enumerate(_fold(generator.deconv3.kernel.numpy(), generator.bn4, 2))]
        self.head = v(generator.conv6.kernel.numpy(), "head")

    @staticmethod
    def _conv_relu(x, kernel, bias, stride=1, pad=None):
        if pad is not None:
            x = torch_pad(x, pad)
        y = tf.nn.conv2d(x, kernel, stride, "VALID" if pad is not None else "SAME")
        return tf.nn.relu(tf.nn.bias_add(y, bias))

    @staticmethod
    def _deconv_relu(x, kernel, bias):
        s = tf.shape(x)
        out_shape = tf.stack([s[0], 2 * s[1], 2 * s[2], tf.shape(kernel)[2]])
        y = tf.nn.conv2d_transpose(x, kernel, out_shape, 2, "SAME")
        return tf.nn.relu(tf.nn.bias_add(y, bias))

    def __call__(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        n, h, w = tf.shape(a)[0], tf.shape(a)[1], tf.shape(a)[2]
        x = tf.reshape(tf.transpose(tf.concat([a, b], axis=-1), [3, 0, 1, 2]), [-1, h, w, 1])
        x = self._conv_relu(x, *self.stem)
        x = self._conv_relu(x, *self.down1, stride=2, pad=1)
        x = self._conv_relu(x, *self.down2, stride=2, pad=1)
        for k1, b1, k2, b2, fc0, fc2 in self.blocks:
            y = self._conv_relu(x, k1, b1)
            y = tf.nn.bias_add(tf.nn.conv2d(y, k2, 1, "SAME"), b2)
            z = tf.sigmoid(tf.matmul(tf.nn.relu(tf.matmul(tf.reduce_mean(y, axis=[1, 2]), fc0)), fc2))
            x = tf.nn.relu(y * z[:, None, None, :] + x)
        feats = tf.reshape(x, tf.concat([[6, n], tf.shape(x)[1:]], axis=0))
        x = tf.concat([(feats[0] + feats[1] + feats[2]) / 3.0, (feats[3] + feats[4] + feats[5]) / 3.0], axis=-1)
        x = self._deconv_relu(x, *self.up1)
        x = self._deconv_relu(x, *self.up2)
        return tf.sigmoid(tf.nn.conv2d(x, self.head, 1, "SAME"))


def fold_generator(generator: Generator) -> FoldedGenerator:
    return FoldedGenerator(generator)
