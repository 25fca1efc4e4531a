"""MFF-GAN's objective: screening maps (decision block), content loss, LSGAN terms.

All tensors are NHWC in [−1, 1].  Formulas and constants: ``../shared/spec/mff_gan.md`` §5.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from fusion_tf.core import ops
from fusion_tf.objectives import lsgan


@dataclass(frozen=True)
class MFFGANLossWeights:
    """α weights the content loss against the adversarial term; β1/β2 intensity vs gradient."""

    alpha: float = 10.0
    beta_int: float = 1.0
    beta_grad: float = 5.0


def screening_maps(near: tf.Tensor, far: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Hard per-pixel masks ``(s_near, s_far)`` from the repeated-blur residual RB.

    ``s_far = 1`` where RB(far) > RB(near), else 0; ``s_near = 1 − s_far``, so **ties (flat regions)
    go to near** exactly as ``sign(W_far − min(W_far, W_near))`` does.  Constants: no gradient.
    """
    w_near = ops.repeated_blur_residual(near)
    w_far = ops.repeated_blur_residual(far)
    s_far = tf.stop_gradient(tf.sign(w_far - tf.minimum(w_far, w_near)))
    return 1.0 - s_far, s_far


def content_losses(fused, near, far, s_near, s_far) -> tuple[tf.Tensor, tf.Tensor]:
    """``(L_int, L_grad)``: masked squared errors in intensity and signed Laplacian.

    Every mean divides by the full element count (not by the number of selected pixels) — a quirk
    of the original that sets the effective weight of each term.
    """
    l_int = tf.reduce_mean(s_far * tf.square(fused - far)) + tf.reduce_mean(s_near * tf.square(fused - near))
    lap_f = ops.laplacian(fused)
    l_grad = tf.reduce_mean(s_far * tf.square(lap_f - ops.laplacian(far))) + tf.reduce_mean(
        s_near * tf.square(lap_f - ops.laplacian(near))
    )
    return l_int, l_grad


def joint_gradient(near: tf.Tensor, far: tf.Tensor) -> tf.Tensor:
    """The discriminator's "real" sample: ``max(|∇far|, |∇near|)`` per pixel."""
    return tf.maximum(tf.abs(ops.laplacian(far)), tf.abs(ops.laplacian(near)))


def fused_gradient(fused: tf.Tensor) -> tf.Tensor:
    """The discriminator's "fake" sample: ``|∇F|``."""
    return tf.abs(ops.laplacian(fused))


def discriminator_loss(d_real, d_fake, rng: tf.random.Generator) -> tf.Tensor:
    return lsgan.discriminator_loss(d_real, d_fake, rng)


def generator_loss(d_fake, l_int, l_grad, rng: tf.random.Generator, weights: MFFGANLossWeights):
    """``(total, adversarial, content)`` with total = L_adv + α·(β1·L_int + β2·L_grad)."""
    adv = lsgan.generator_loss(d_fake, rng)
    content = weights.beta_int * l_int + weights.beta_grad * l_grad
    return adv + weights.alpha * content, adv, content
