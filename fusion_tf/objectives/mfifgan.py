"""MFIF-GAN's WGAN-GP objective (spec ``mfif_gan.md`` §4, ``tf_stack.md`` §6).

* critic: ``L_D = −mean D(real) + mean D(fake) + λ_gp·L_gp`` — real and fake scored in separate calls;
* penalty: ``F̃ = α·F + (1−α)·F̂`` with α ~ U[0,1) per sample, **only the 1-channel map is interpolated**
  and the gradient is taken **w.r.t. F̃ only** (A and B are conditioning inputs, not part of the sample);
* generator: ``L_G = −mean D(fake) + λ_rec·mean|F − F̂|``.

The critic ends in a sigmoid (as coded and as in the paper); outputs are averaged over the patch grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from fusion_tf.models.mfifgan import critic_input

GT_RANGES = ("code", "paper")


@dataclass(frozen=True)
class MFIFGANLossWeights:
    lambda_gp: float = 10.0
    lambda_rec: float = 10.0
    #: ε inside the penalty's square root; the original has none (0) — ‖g‖ = 0 would give NaN gradients
    gp_eps: float = 0.0


def gradient_penalty(critic, a: tf.Tensor, b: tf.Tensor, f_tilde: tf.Tensor, eps: float = 0.0) -> tf.Tensor:
    """``mean_n (‖∂ΣD(A,B,F̃)/∂F̃_n‖₂ − 1)²`` with the norm over (H, W, 1) of each sample.

    The inner tape watches only ``f_tilde`` so A and B never enter the norm; the caller's outer tape
    differentiates the result w.r.t. the critic's variables (double back-prop).
    """
    with tf.GradientTape() as tape:
        tape.watch(f_tilde)
        y = critic(critic_input(a, b, f_tilde), training=True)
        total = tf.reduce_sum(y)
    g = tape.gradient(total, f_tilde)
    norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=[1, 2, 3]) + eps)
    return tf.reduce_mean(tf.square(norm - 1.0))


def interpolate(real: tf.Tensor, fake: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """``α·F + (1−α)·F̂`` with both ends detached (the original interpolates ``.data``)."""
    return alpha * tf.stop_gradient(real) + (1.0 - alpha) * tf.stop_gradient(fake)


def critic_loss(d_real, d_fake, gp, weights: MFIFGANLossWeights = MFIFGANLossWeights()):
    """``(total, wasserstein part, gp)``."""
    wass = -tf.reduce_mean(d_real) + tf.reduce_mean(d_fake)
    return wass + weights.lambda_gp * gp, wass, gp


def generator_loss(d_fake, fake, real, weights: MFIFGANLossWeights = MFIFGANLossWeights()):
    """``(total, adversarial, L1)`` — L1 against the map in the chosen range (code: [−1, 1])."""
    adv = -tf.reduce_mean(d_fake)
    rec = tf.reduce_mean(tf.abs(real - fake))
    return adv + weights.lambda_rec * rec, adv, rec


def map_from_uint8(m: tf.Tensor, gt_range: str = "code") -> tf.Tensor:
    """Stored 0..255 focus map → the training target.

    ``code`` (default, how the released model was trained): normalised like an image, (m/255−0.5)/0.5
    → [−1, 1] (background −1, unreachable by the sigmoid).  ``paper``: m/255 → [0, 1].
    """
    if gt_range not in GT_RANGES:
        raise ValueError(f"gt_range must be one of {GT_RANGES}, got {gt_range!r}")
    m = tf.cast(m, tf.float32) / 255.0
    return (m - 0.5) / 0.5 if gt_range == "code" else m
