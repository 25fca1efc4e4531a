"""GIPC-GAN networks (Li, Li & Jiang, Complex & Intelligent Systems 2023) — from the paper alone.

No code or weights were published, so everything not printed in Tables 1–2 is inferred; the
inferences are listed in ``docs/gipcgan.md`` and in ``../shared/spec/gipc_gan.md`` §3–§5.

Two variants, because the paper describes two different models (spec §5):

``paper``          (default) Tables 1–2 and the prose: dense two-path encoder with information
                   exchange, 1×1 feature generator 128→128, decoder 64→32→16 and a 3×3 tanh output;
                   discriminator 16/32/64/128.  G 156,033 / D 99,649 trainable parameters.
``count_matched``  reproduces Table 4's counts (0.0404 / 0.4151 "M", where M = 2²⁰): the same
                   encoder, a 1×1 128→1 tanh head in place of feature generator + decoder, and
                   MFF-GAN's 32/64/128/256 discriminator.  G 42,273 / D 392,833.

The two encoder paths have the same structure and separate weights (pseudo-Siamese, stated).
The exchange is parameter-free (wiring W1, spec §3.2): each block's dense stack gets the *other*
path's latest output, which is the only wiring that meets Table 1's input counts 32/48/64 with
"exchange on all four blocks" and fits Table 4's parameter budget.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

VARIANTS = ("paper", "count_matched")
EXCHANGES = ("all_levels", "first_level")

#: Inferred (MFF-GAN lineage; the paper gives none): LeakyReLU slope, BN settings, initialisation.
LEAKY_SLOPE = 0.2
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def _init():
    # MFF-GAN's truncated normal (stddev 1e-3), the code base GIPC-GAN descends from
    return keras.initializers.TruncatedNormal(stddev=1e-3)


def _conv(filters: int, kernel: int, name: str, strides: int = 1, padding: str = "same") -> layers.Conv2D:
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, name=name,
                         kernel_initializer=_init(), bias_initializer="zeros")


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _lrelu(x):
    return tf.nn.leaky_relu(x, alpha=LEAKY_SLOPE)


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
    return value


class ConvBlock(layers.Layer):
    """conv (+ BN) + LeakyReLU, the paper's "convolutional block layer"; built for ``in_channels``."""

    def __init__(self, filters: int, kernel: int, in_channels: int, batch_norm: bool = True,
                 strides: int = 1, padding: str = "same", name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.in_channels = in_channels
        self.conv = _conv(filters, kernel, "conv", strides, padding)
        self.bn = _bn("bn") if batch_norm else None

    def build(self, input_shape=None):
        shape = (None, None, None, self.in_channels)
        self.conv.build(shape)
        if self.bn is not None:
            self.bn.build((None, None, None, self.conv.filters))
        self.built = True

    def call(self, x, training=False):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x, training=training)
        return _lrelu(x)


class GIPCGANGenerator(keras.Model):
    """Input ``[near, far]`` (N,H,W,1) in [−1,1] → fused (N,H,W,1) in (−1,1); H, W arbitrary.

    ``exchange="all_levels"`` (W1, default) feeds block k of each path with its own outputs of
    blocks 1..k−1 plus the other path's block k−1 output; ``"first_level"`` (W1′) exchanges only
    after block 1 and then grows each path as a plain DenseNet.  Both give 1/32/48/64 inputs.
    """

    def __init__(self, variant: str = "paper", exchange: str = "all_levels", name: str = "generator", **kwargs):
        super().__init__(name=name, **kwargs)
        self.variant = _check(variant, VARIANTS, "variant")
        self.exchange = _check(exchange, EXCHANGES, "exchange")
        self.encoder_near, self.encoder_far = (
            [ConvBlock(16, 3, cin, name=f"encoder_{side}_{k + 1}") for k, cin in enumerate((1, 32, 48, 64))]
            for side in ("near", "far")
        )
        if variant == "paper":
            self.feature = ConvBlock(128, 1, 128, name="feature_generator")
            self.decoder = [
                ConvBlock(64, 3, 128, batch_norm=False, name="decoder_1"),  # stated: no BN here
                ConvBlock(32, 3, 64, name="decoder_2"),
                ConvBlock(16, 3, 32, name="decoder_3"),
            ]
            self.output_conv = _conv(1, 3, "output")
        else:
            self.feature, self.decoder = None, []
            self.output_conv = _conv(1, 1, "output")  # MFF-GAN-like 1×1 head (Table 4's budget)

    def build(self, input_shape=None):
        for block in self.encoder_near + self.encoder_far + self.decoder + ([self.feature] if self.feature else []):
            block.build()
        self.output_conv.build((None, None, None, 16 if self.variant == "paper" else 128))
        self.built = True

    def encode(self, near, far, training=False) -> tf.Tensor:
        """The 128-channel concatenation of both paths' four block outputs, interleaved per level."""
        paths = {"near": self.encoder_near, "far": self.encoder_far}
        own = {"near": [], "far": []}
        x = {"near": near, "far": far}
        for k in range(4):
            out = {side: paths[side][k](x[side], training=training) for side in ("near", "far")}
            for side in ("near", "far"):
                own[side].append(out[side])
            if k == 3:
                break
            for side, other in (("near", "far"), ("far", "near")):
                if self.exchange == "all_levels":
                    x[side] = tf.concat(own[side] + [own[other][-1]], axis=-1)
                else:  # first_level: [c1 own, c1 other, c2 own, c3 own]
                    x[side] = tf.concat([own[side][0], own[other][0]] + own[side][1:], axis=-1)
        return tf.concat([t for pair in zip(own["near"], own["far"]) for t in pair], axis=-1)

    def call(self, inputs, training=False):
        near, far = inputs
        x = self.encode(near, far, training=training)
        if self.feature is not None:
            x = self.feature(x, training=training)
            for block in self.decoder:
                x = block(x, training=training)
        return tf.tanh(self.output_conv(x))


class GIPCGANDiscriminator(keras.Model):
    """Four 3×3 stride-2 VALID conv blocks (BN on 2–4) and a linear layer; one 1-channel map in.

    One D judges all four inputs (I, ∇I, F, ∇F), each in its own call (the paper writes the same
    D(·) in Eqs. 8–9, 14–17).  As in MFF-GAN, BN always uses batch statistics (the TF2 authors'
    code descends from MFF-GAN's, whose graph ran BN in training mode everywhere).
    """

    def __init__(self, variant: str = "paper", patch_size: int = 80, name: str = "discriminator", **kwargs):
        super().__init__(name=name, **kwargs)
        self.variant = _check(variant, VARIANTS, "variant")
        self.patch_size = patch_size
        widths = (16, 32, 64, 128) if variant == "paper" else (32, 64, 128, 256)
        cins = (1,) + widths[:3]
        self.blocks = [
            ConvBlock(w, 3, cin, batch_norm=k > 0, strides=2, padding="valid", name=f"block_{k + 1}")
            for k, (w, cin) in enumerate(zip(widths, cins))
        ]
        self.flatten = layers.Flatten(name="flatten")
        self.linear = layers.Dense(1, name="linear", kernel_initializer=_init(), bias_initializer="zeros")

    def feature_size(self) -> int:
        size = self.patch_size
        for _ in self.blocks:
            size = (size - 3) // 2 + 1
        return size

    def build(self, input_shape=None):
        for block in self.blocks:
            block.build()
        side = self.feature_size()
        self.linear.build((None, side * side * self.blocks[-1].conv.filters))
        self.built = True

    def call(self, x, training=None):
        for block in self.blocks:
            x = block(x, training=True)  # always batch statistics (inferred, as MFF-GAN)
        return self.linear(self.flatten(x))


def build_generator(variant: str = "paper", exchange: str = "all_levels") -> GIPCGANGenerator:
    g = GIPCGANGenerator(variant, exchange)
    g.build()
    return g


def build_discriminator(variant: str = "paper", patch_size: int = 80) -> GIPCGANDiscriminator:
    d = GIPCGANDiscriminator(variant, patch_size)
    d.build()
    return d


def build_networks(variant: str = "paper") -> dict:
    """Both networks at the 80×80 training size (parameter counts, training)."""
    return {"generator": build_generator(variant), "discriminator": build_discriminator(variant)}


def build_networks_compact() -> dict:
    """The ``count_matched`` variant (registry entry ``gipcgan-compact``)."""
    return build_networks("count_matched")
