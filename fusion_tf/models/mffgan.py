"""MFF-GAN networks (Zhang et al., Information Fusion 2021), layer for layer as the TF1 original.

Layer names equal the original's TF variable scopes (``layer2_3_far``…), so a TF1 checkpoint maps
onto them by name (see :mod:`fusion_tf.weights.tf1`).  Facts: ``../shared/spec/mff_gan.md`` §2–§3.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

#: Original initialisation: truncated normal, stddev 1e-3, zero biases (G, D and the Dense head).
def _init():
    return keras.initializers.TruncatedNormal(stddev=1e-3)


def _conv(filters: int, kernel: int, name: str, strides: int = 1, padding: str = "same") -> layers.Conv2D:
    return layers.Conv2D(
        filters, kernel, strides=strides, padding=padding, name=name,
        kernel_initializer=_init(), bias_initializer="zeros",
    )


def _lrelu(x):
    # max(x, 0.2x), the original's leaky ReLU
    return tf.nn.leaky_relu(x, alpha=0.2)


class MFFGANGenerator(keras.Model):
    """Two-path dense generator with feature exchange; input ``[near, far]`` (N,H,W,1) in [−1,1].

    Each path has its own weights (the network is deliberately asymmetric: ``near`` first).  At levels
    2 and 3 the two paths' features are concatenated and each path gets a 1×1 "exchange" conv of that
    shared tensor, which feeds only the next 3×3 conv of its own path.  The head concatenates the
    four per-level outputs interleaved near/far and maps 128 channels to one tanh channel.
    Fully convolutional, 40,033 parameters, receptive field 11×11.
    """

    #: pixels of context each output pixel sees on every side (5×5 + three 3×3 convs)
    halo = 5

    def __init__(self, name: str = "fusion_model", **kwargs):
        super().__init__(name=name, **kwargs)
        self.layer1, self.layer1_far = _conv(16, 5, "layer1"), _conv(16, 5, "layer1_far")
        self.layer2, self.layer2_far = _conv(16, 3, "layer2"), _conv(16, 3, "layer2_far")
        self.layer2_3, self.layer2_3_far = _conv(16, 1, "layer2_3"), _conv(16, 1, "layer2_3_far")
        self.layer3, self.layer3_far = _conv(16, 3, "layer3"), _conv(16, 3, "layer3_far")
        self.layer3_4, self.layer3_4_far = _conv(16, 1, "layer3_4"), _conv(16, 1, "layer3_4_far")
        self.layer4, self.layer4_far = _conv(16, 3, "layer4"), _conv(16, 3, "layer4_far")
        self.layer5 = _conv(1, 1, "layer5")

    def build(self, input_shape=None):
        # Build every layer explicitly so weights exist before the first call (needed for loading
        # checkpoints and for optimizer.build under tf.distribute).
        shapes = {
            "layer1": 1, "layer2": 16, "layer2_3": 32, "layer3": 48, "layer3_4": 32, "layer4": 64,
        }
        for base, cin in shapes.items():
            for suffix in ("", "_far"):
                getattr(self, base + suffix).build((None, None, None, cin))
        self.layer5.build((None, None, None, 128))
        self.built = True

    def call(self, inputs, training=None):
        near, far = inputs
        c1n, c1f = _lrelu(self.layer1(near)), _lrelu(self.layer1_far(far))
        c2n, c2f = _lrelu(self.layer2(c1n)), _lrelu(self.layer2_far(c1f))
        m2 = tf.concat([c2n, c2f], axis=-1)
        c23n, c23f = _lrelu(self.layer2_3(m2)), _lrelu(self.layer2_3_far(m2))
        c3n = _lrelu(self.layer3(tf.concat([c1n, c2n, c23n], axis=-1)))
        c3f = _lrelu(self.layer3_far(tf.concat([c1f, c2f, c23f], axis=-1)))
        m3 = tf.concat([c3n, c3f], axis=-1)
        c34n, c34f = _lrelu(self.layer3_4(m3)), _lrelu(self.layer3_4_far(m3))
        c4n = _lrelu(self.layer4(tf.concat([c1n, c2n, c3n, c34n], axis=-1)))
        c4f = _lrelu(self.layer4_far(tf.concat([c1f, c2f, c3f, c34f], axis=-1)))
        head = tf.concat([c1n, c1f, c2n, c2f, c3n, c3f, c4n, c4f], axis=-1)
        return tf.tanh(self.layer5(head))


class MFFGANDiscriminator(keras.Model):
    """Four 3×3 stride-2 VALID convs (BN on 2–4) and a linear head; input a 60×60 gradient map.

    Quirk kept from the original: BatchNorm runs with batch statistics in *every* call (the TF1 graph
    had ``is_training=True`` everywhere), so :meth:`call` ignores ``training`` for BN.  Real and fake
    batches must be passed in separate calls.  389,761 trainable + 896 moving statistics (unused).
    """

    def __init__(self, patch_size: int = 60, name: str = "discriminator", **kwargs):
        super().__init__(name=name, **kwargs)
        self.patch_size = patch_size
        self.layer_1 = _conv(32, 3, "layer_1", strides=2, padding="valid")
        self.layer_2 = _conv(64, 3, "layer_2", strides=2, padding="valid")
        self.layer_3 = _conv(128, 3, "layer_3", strides=2, padding="valid")
        self.layer_4 = _conv(256, 3, "layer_4", strides=2, padding="valid")
        self.bn_2, self.bn_3, self.bn_4 = (
            layers.BatchNormalization(momentum=0.9, epsilon=1.001e-5, name=f"layer_{k}_bn") for k in (2, 3, 4)
        )
        self.flatten = layers.Flatten(name="flatten")
        self.line_5 = layers.Dense(1, name="line_5", kernel_initializer=_init(), bias_initializer="zeros")

    def build(self, input_shape=None):
        size, channels = self.patch_size, 1
        for conv, bn in ((self.layer_1, None), (self.layer_2, self.bn_2), (self.layer_3, self.bn_3),
                         (self.layer_4, self.bn_4)):
            conv.build((None, size, size, channels))
            size, channels = (size - 3) // 2 + 1, conv.filters
            if bn is not None:
                bn.build((None, size, size, channels))
        self.line_5.build((None, size * size * channels))
        self.built = True

    def call(self, x, training=None):
        x = _lrelu(self.layer_1(x))
        for conv, bn in ((self.layer_2, self.bn_2), (self.layer_3, self.bn_3), (self.layer_4, self.bn_4)):
            x = _lrelu(bn(conv(x), training=True))  # always batch statistics (faithful quirk)
        return self.line_5(self.flatten(x))


def build_generator() -> MFFGANGenerator:
    g = MFFGANGenerator()
    g.build()
    return g


def build_discriminator(patch_size: int = 60) -> MFFGANDiscriminator:
    d = MFFGANDiscriminator(patch_size)
    d.build()
    return d


def build_networks() -> dict:
    """Both networks at the training patch size (for parameter counts and training)."""
    return {"generator": build_generator(), "discriminator": build_discriminator()}
