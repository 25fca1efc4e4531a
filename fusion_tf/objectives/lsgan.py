"""Least-squares GAN losses with random soft labels (MFF-GAN, GIPC-GAN).

Labels are drawn from a ``tf.random.Generator`` at every evaluation: a NumPy draw inside a
``tf.function`` would be frozen at trace time (tf_stack.md §5), silently turning soft labels into
constants.  Each call makes its own independent draw, as the original graph did.
"""

from __future__ import annotations

import tensorflow as tf

#: MFF-GAN's label ranges: real/target ~ U(0.7, 1.2), fake ~ U(0, 0.3).
REAL_LABELS = (0.7, 1.2)
FAKE_LABELS = (0.0, 0.3)


def soft_labels(rng: tf.random.Generator, like: tf.Tensor, bounds: tuple[float, float]) -> tf.Tensor:
    """Uniform labels in ``[low, high)`` with the shape and dtype of the critic output ``like``."""
    low, high = bounds
    return rng.uniform(tf.shape(like), minval=low, maxval=high, dtype=like.dtype)


def least_squares(pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """``mean((pred − target)²)`` (no ½ factor, as coded in the originals)."""
    return tf.reduce_mean(tf.square(pred - target))


def discriminator_loss(
    d_real: tf.Tensor, d_fake: tf.Tensor, rng: tf.random.Generator,
    real_bounds=REAL_LABELS, fake_bounds=FAKE_LABELS,
) -> tf.Tensor:
    """``mean((D(real) − u_real)²) + mean((D(fake) − u_fake)²)`` with fresh soft labels."""
    return least_squares(d_real, soft_labels(rng, d_real, real_bounds)) + least_squares(
        d_fake, soft_labels(rng, d_fake, fake_bounds)
    )


def generator_loss(d_fake: tf.Tensor, rng: tf.random.Generator, target_bounds=REAL_LABELS) -> tf.Tensor:
    """``mean((D(fake) − u_target)²)``: the generator wants its output judged real."""
    return least_squares(d_fake, soft_labels(rng, d_fake, target_bounds))
