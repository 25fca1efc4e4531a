"""GACN's objective (``GALoss``): global Dice on the initial map + 1 − soft Qg of the fused image.

Exactly as coded (spec ``gacn.md`` §3), including the details that differ from the paper: k = 1e5 in
the soft min/max, ``atan`` (not ``atan2``), the 1e-6 buffers and the order in which they are added
(``g_F`` is bumped *after* the A ratio and the bump persists into B), and the pooling as the mean of
per-pixel ``(Q_AF·g_A + Q_BF·g_B)/(g_A + g_B)`` instead of ΣQW/ΣW.  All tensors NHWC, 1 channel.
"""

from __future__ import annotations

import math

import tensorflow as tf

from fusion_tf.core import ops

BUF = 1e-6
SOFT_K = 1e5
LAMBDA_QG = 1.0


def dice_loss(pred: tf.Tensor, target: tf.Tensor, smooth: float = 1.0) -> tf.Tensor:
    """``1 − (2Σpt + 1)/(Σp² + Σt² + 1)`` over the whole batch tensor (one global Dice, not per image)."""
    inter = tf.reduce_sum(pred * target)
    return 1.0 - (2.0 * inter + smooth) / (tf.reduce_sum(pred * pred) + tf.reduce_sum(target * target) + smooth)


def _bump_zeros(x: tf.Tensor) -> tf.Tensor:
    """``x += buf where x == 0`` — the original's guard against division by zero."""
    return tf.where(tf.equal(x, 0.0), x + BUF, x)


def _edge_preservation(gx, gy, g_f, alpha_f, k):
    """Q_XF of one source and the updated g_F (the buffer bump persists to the next source)."""
    g_x = tf.sqrt(gx * gx + gy * gy)
    alpha_x = tf.atan(gy / _bump_zeros(gx))
    g_x = _bump_zeros(g_x)
    r1 = g_f / g_x
    g_f = _bump_zeros(g_f)
    r2 = g_x / g_f
    s = tf.sigmoid(-k * (g_x - g_f))
    g_xf = s * r2 + (1.0 - s) * r1  # soft min(g_X/g_F, g_F/g_X)
    a_xf = tf.abs(tf.abs(alpha_x - alpha_f) - math.pi / 2.0) * 2.0 / math.pi
    q = tf.sigmoid(10.0 * (g_xf - 0.5)) * tf.sigmoid(20.0 * (a_xf - 0.75))
    return q, g_x, g_f


def soft_qg(img_a: tf.Tensor, img_b: tf.Tensor, fused: tf.Tensor, k: float = SOFT_K) -> tf.Tensor:
    """Differentiable Xydeas–Petrović Q^{AB/F} as GACN codes it (Sobel with zero padding)."""
    fx, fy = ops.sobel(fused)
    fx = fx + BUF  # always, before g_F
    g_f = tf.sqrt(fx * fx + fy * fy)
    alpha_f = tf.atan(fy / _bump_zeros(fx))
    ax, ay = ops.sobel(img_a)
    q_a, g_a, g_f = _edge_preservation(ax, ay, g_f, alpha_f, k)
    bx, by = ops.sobel(img_b)
    q_b, g_b, _ = _edge_preservation(bx, by, g_f, alpha_f, k)
    return tf.reduce_mean((q_a * g_a + q_b * g_b) / (g_a + g_b))


def gacn_loss(img1, img2, output_origin, output_bgf, target, lambda_qg: float = LAMBDA_QG):
    """``(total, dice, qg)`` with ``total = dice + λ·qg`` and ``qg = 1 − Qg_soft(img1, img2, F)``.

    F is fused with the *rectified* map, so the Qg term trains through the boundary guided filter,
    while Dice supervises the *initial* map.
    """
    dice = dice_loss(output_origin, target)
    fused = output_bgf * img1 + (1.0 - output_bgf) * img2
    qg = 1.0 - soft_qg(img1, img2, fused)
    return dice + lambda_qg * qg, dice, qg
