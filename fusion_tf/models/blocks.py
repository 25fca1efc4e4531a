"""Small reusable blocks of the PyTorch-born models (GACN, MFIF-GAN): squeeze-excitation and conv blocks.

Sub-layer names follow the PyTorch module paths (``fc_0`` for ``fc.0``, ``<block>_Conv2d``…) so a state
dict maps onto them by name, and the default initialisers are PyTorch's, so training from scratch starts
from the same distribution as the originals.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers


class TorchUniformBias(keras.initializers.Initializer):
    """PyTorch's default bias init U(±1/√fan_in); Keras has no fan-in-aware bias initialiser."""

    def __init__(self, fan_in: int):
        self.fan_in = int(fan_in)

    def __call__(self, shape, dtype=None):
        bound = 1.0 / math.sqrt(self.fan_in) if self.fan_in > 0 else 0.0
        return keras.random.uniform(shape, -bound, bound, dtype=dtype or "float32")

    def get_config(self):
        return {"fan_in": self.fan_in}


def torch_kernel_init() -> keras.initializers.Initializer:
    """PyTorch's default Conv/Linear weight init (kaiming_uniform with a=√5) in Keras terms."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def torch_conv2d(filters: int, kernel: int, in_channels: int, name: str, use_bias: bool = True) -> layers.Conv2D:
    """Stride-1 'same' conv (= PyTorch padding k//2 for odd k) with PyTorch's default initialisation."""
    fan_in = in_channels * kernel * kernel
    return layers.Conv2D(
        filters, kernel, padding="same", use_bias=use_bias, name=name,
        kernel_initializer=torch_kernel_init(),
        bias_initializer=TorchUniformBias(fan_in) if use_bias else "zeros",
    )


class ConvReluBN(layers.Layer):
    """Conv 3×3 → ReLU → BatchNorm, in that order (BN *after* the ReLU, as GACN codes its conv_block).

    Sub-layers are named ``<name>_Conv2d`` and ``<name>_BatchNorm`` after the PyTorch Sequential
    children.  BN defaults are PyTorch's (momentum 0.1 → Keras 0.9, ε 1e-5).
    """

    def __init__(self, filters: int, in_channels: int, kernel: int = 3, momentum: float = 0.9,
                 epsilon: float = 1e-5, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.in_channels = in_channels
        self.conv = torch_conv2d(filters, kernel, in_channels, f"{self.name}_Conv2d")
        self.bn = layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=f"{self.name}_BatchNorm")

    def build(self, input_shape=None):
        shape = (None, None, None, self.in_channels)
        self.conv.build(shape)
        self.bn.build(self.conv.compute_output_shape(shape))
        self.built = True

    def call(self, x, training=False):
        return self.bn(tf.nn.relu(self.conv(x)), training=training)


class ChannelSE(layers.Layer):
    """Channel squeeze-excitation: global mean → Dense(C/r) → ReLU → Dense(C) → sigmoid → scale.

    Both Dense layers have no bias (as coded in GACN); names ``fc_0``/``fc_2`` mirror ``fc.0``/``fc.2``.
    """

    def __init__(self, channels: int, reduction: int = 8, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.channels = channels
        hidden = max(channels // reduction, 1)
        self.fc_0 = layers.Dense(hidden, use_bias=False, kernel_initializer=torch_kernel_init(), name="fc_0")
        self.fc_2 = layers.Dense(channels, use_bias=False, kernel_initializer=torch_kernel_init(), name="fc_2")

    def build(self, input_shape=None):
        self.fc_0.build((None, self.channels))
        self.fc_2.build((None, self.fc_0.units))
        self.built = True

    def call(self, x):
        z = tf.reduce_mean(x, axis=[1, 2])
        w = tf.sigmoid(self.fc_2(tf.nn.relu(self.fc_0(z))))
        return x * w[:, None, None, :]


class SpatialSE(layers.Layer):
    """Spatial squeeze-excitation: Conv k×k (C → 1, no bias) → sigmoid → scale every channel."""

    def __init__(self, channels: int, kernel: int = 7, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.channels = channels
        self.fc_0 = torch_conv2d(1, kernel, channels, "fc_0", use_bias=False)

    def build(self, input_shape=None):
        self.fc_0.build((None, None, None, self.channels))
        self.built = True

    def call(self, x):
        # Same maths as ``self.fc_0(x)`` (a k×k conv, C → 1), computed in two steps that CPUs run well:
        # a 1×k conv C → k whose output channel i is kernel row i (a dense conv with k outputs), then
        # a k×1 conv k → 1 with a one-hot kernel that adds row i's result from i − r rows away.  A
        # plain C → 1 conv is ~7× slower on oneDNN, and a depthwise conv + channel sum writes and
        # reads back a C-channel product tensor (491 MB for GACN's 64 channels at 1600×1200) where
        # this writes k channels (54 MB): less memory traffic and a lower peak.  Zero padding of both
        # steps equals the padding of the one k×k conv (rows outside the image contribute zeros).
        return x * tf.sigmoid(self.logits(x))

    def logits(self, x):
        k = self.fc_0.kernel  # (k, k, C, 1)
        rows = tf.transpose(k[..., 0], [1, 2, 0])[None]  # (1, k, C, k): output channel i = kernel row i
        size = int(k.shape[0])
        shift_add = tf.constant(np.eye(size, dtype=np.float32).reshape(size, 1, size, 1))
        return tf.nn.conv2d(tf.nn.conv2d(x, rows, 1, "SAME"), shift_add, 1, "SAME")
