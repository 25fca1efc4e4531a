"""Fixed (parameter-free) image operators shared by all four models, as TensorFlow ops.

Every operator works on NHWC float tensors, channel by channel (depthwise), so the same code serves
1-channel luma, 3-channel RGB and GACN's 64 feature channels.  Kernels are applied as
*cross-correlation*, like ``tf.nn.conv2d`` and like every original (TF1, PyTorch, MATLAB ``filter2``).

Padding is explicit because the originals differ and it changes borders measurably:

* ``"zero"``      — TF ``SAME`` zero padding (MFF-GAN Laplacian and blur, GACN blurs, Sobel in the Qg loss);
* ``"reflect"``   — mirror without repeating the edge (``tf.pad`` ``REFLECT``);
* ``"symmetric"`` — mirror repeating the edge (MATLAB ``imfilter(..., 'symmetric')``);
* ``"replicate"`` — repeat the edge pixel (MATLAB ``imgaussfilt`` default; MFIF-GAN data synthesis).

Pure-NumPy kernel builders (``matlab_gaussian_kernel`` …) live here too so tests and metrics can use
the very same numbers.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

PADDING_MODES = ("zero", "reflect", "symmetric", "replicate")

#: 4-neighbour Laplacian used by MFF-GAN (and GIPC-GAN's gradient operator).
LAPLACIAN_KERNEL = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=np.float32)

#: Sobel kernels, cross-correlation orientation (x: left→right derivative, y: top→bottom).
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=np.float32)
SOBEL_Y = np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]], dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# Kernel builders (NumPy)
# ----------------------------------------------------------------------------------------------
def matlab_gaussian_kernel(size: int | tuple[int, int], sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: sampled Gaussian, tiny tails zeroed, sum 1.

    MATLAB zeroes entries below ``eps * max`` before normalising; kept for bit-level agreement.
    """
    rows, cols = (size, size) if np.isscalar(size) else size
    y = np.arange(rows, dtype=np.float64) - (rows - 1) / 2.0
    x = np.arange(cols, dtype=np.float64) - (cols - 1) / 2.0
    h = np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()


def imgaussfilt_kernel(sigma: float) -> np.ndarray:
    """The kernel MATLAB ``imgaussfilt(I, sigma)`` uses: size ``2*ceil(2*sigma)+1``."""
    size = 2 * int(np.ceil(2.0 * sigma)) + 1
    return matlab_gaussian_kernel(size, sigma)


def gaussian_kernel(radius: int, sigma: float) -> np.ndarray:
    """Plain normalised Gaussian ``exp(-(x²+y²)/(2σ²))`` on a (2r+1)² grid (PyTorch-style originals)."""
    ax = np.arange(-radius, radius + 1, dtype=np.float64)
    h = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * sigma * sigma))
    return h / h.sum()


#: MFF-GAN's low-pass filter: ``fspecial('gaussian', 3, 1.5)`` rounded to 4 decimals (sums to 0.9998).
MFFGAN_LOWPASS_KERNEL = np.round(matlab_gaussian_kernel(3, 1.5), 4).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Padding and fixed-kernel filtering
# ----------------------------------------------------------------------------------------------
def pad2d(x: tf.Tensor, top: int, bottom: int, left: int, right: int, mode: str = "zero") -> tf.Tensor:
    """Pad the H and W axes of an NHWC tensor with one of :data:`PADDING_MODES`."""
    if mode not in PADDING_MODES:
        raise ValueError(f"padding mode must be one of {PADDING_MODES}, got {mode!r}")
    if mode == "replicate":
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        rows = tf.clip_by_value(tf.range(-top, h + bottom), 0, h - 1)
        cols = tf.clip_by_value(tf.range(-left, w + right), 0, w - 1)
        return tf.gather(tf.gather(x, rows, axis=1), cols, axis=2)
    tf_mode = {"zero": "CONSTANT", "reflect": "REFLECT", "symmetric": "SYMMETRIC"}[mode]
    return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], mode=tf_mode)


def filter2d(x: tf.Tensor, kernel, padding: str = "zero") -> tf.Tensor:
    """Correlate every channel of ``x`` (NHWC) with one fixed 2-D ``kernel``; output size = input size.

    For odd kernels the padding is symmetric, like TF ``SAME``.  ``"zero"`` runs as a ``SAME``
    depthwise conv directly (no explicit pad), which is what the TF1 original did.
    """
    x = tf.convert_to_tensor(x)
    k = tf.cast(tf.convert_to_tensor(kernel), x.dtype)
    kh, kw = int(k.shape[0]), int(k.shape[1])
    channels = x.shape[-1]
    if channels is None:
        raise ValueError("filter2d needs a known channel count")
    dw = tf.tile(tf.reshape(k, [kh, kw, 1, 1]), [1, 1, channels, 1])
    if padding == "zero":
        return tf.nn.depthwise_conv2d(x, dw, strides=[1, 1, 1, 1], padding="SAME")
    top, left = (kh - 1) // 2, (kw - 1) // 2
    xp = pad2d(x, top, kh - 1 - top, left, kw - 1 - left, padding)
    return tf.nn.depthwise_conv2d(xp, dw, strides=[1, 1, 1, 1], padding="VALID")


def laplacian(x: tf.Tensor) -> tf.Tensor:
    """Signed 4-neighbour Laplacian with zero padding (MFF-GAN's ∇; borders keep the padding effect)."""
    return filter2d(x, LAPLACIAN_KERNEL, "zero")


def repeated_blur_residual(x: tf.Tensor) -> tf.Tensor:
    """MFF-GAN's ``RB(x) = |x − G(G(x))|``: the 3×3 σ1.5 low-pass applied twice, zero padding."""
    blurred = filter2d(filter2d(x, MFFGAN_LOWPASS_KERNEL), MFFGAN_LOWPASS_KERNEL)
    return tf.abs(x - blurred)


def sobel(x: tf.Tensor, padding: str = "zero") -> tuple[tf.Tensor, tf.Tensor]:
    """Sobel responses ``(gx, gy)``.  Zero padding by default: ``tf.image.sobel_edges`` reflects."""
    return filter2d(x, SOBEL_X, padding), filter2d(x, SOBEL_Y, padding)


# ----------------------------------------------------------------------------------------------
# Window sums, box means, guided filter
# ----------------------------------------------------------------------------------------------
def window_sum(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Zero-padded (2r+1)² window **sum** per channel, as a separable pair of 1-D ones kernels.

    Equal to a depthwise conv with an all-ones (2r+1)² kernel but O(r) instead of O(r²) per pixel
    (GACN's spatial-frequency module spends most of its time here in the original).
    """
    k = 2 * radius + 1
    x = filter2d(x, np.ones((1, k), np.float32), "zero")
    return filter2d(x, np.ones((k, 1), np.float32), "zero")


def box_mean(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Mean over the valid cells of a (2r+1)² window (border windows are clipped, not zero-padded)."""
    k = 2 * radius + 1
    return tf.nn.avg_pool2d(x, ksize=k, strides=1, padding="SAME")


def guided_filter(guide: tf.Tensor, src: tf.Tensor, radius: int, eps: float) -> tf.Tensor:
    """He et al.'s grey guided filter with clipped box means (the formulation GACN codes).

    ``a = cov(I, p) / (var(I) + eps)``, ``b = mean(p) − a·mean(I)``, ``q = mean(a)·I + mean(b)``.
    Differentiable in both inputs.
    """
    # The box means run on the four (then two) maps stacked as channels: pooling is per channel, so
    # the values are bit-identical, and for 1-channel maps oneDNN's pooling costs nearly as much per
    # call as for 4 (it vectorises over channels): 2 calls instead of 6, ~2× faster at 1600×1200.
    if guide.shape[-1] != src.shape[-1] or guide.shape[-1] is None:  # stacking needs equal channel counts
        mean_i, mean_p = box_mean(guide, radius), box_mean(src, radius)
        a = (box_mean(guide * src, radius) - mean_i * mean_p) / (box_mean(guide * guide, radius) - mean_i * mean_i + eps)
        b = mean_p - a * mean_i
        return box_mean(a, radius) * guide + box_mean(b, radius)
    mean_i, mean_p, mean_ip, mean_ii = tf.split(
        box_mean(tf.concat([guide, src, guide * src, guide * guide], axis=-1), radius), 4, axis=-1)
    cov_ip = mean_ip - mean_i * mean_p
    var_i = mean_ii - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a, mean_b = tf.split(box_mean(tf.concat([a, b], axis=-1), radius), 2, axis=-1)
    return mean_a * guide + mean_b


def shift_zero_fill(x: tf.Tensor, dy: int, dx: int) -> tf.Tensor:
    """Shift content by (dy, dx) pixels (positive = down/right), filling vacated cells with 0."""
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    pt, pb = max(dy, 0), max(-dy, 0)
    pl, pr = max(dx, 0), max(-dx, 0)
    padded = tf.pad(x, [[0, 0], [pt, pb], [pl, pr], [0, 0]])
    return padded[:, pb : pb + h, pr : pr + w, :]
