"""GIPC-GAN's objective (Eqs. 6–17): supervised content loss plus intensity *and* gradient LSGAN terms.

All tensors are NHWC in [−1, 1].  F = G(near, far), I = the all-in-focus target, ∇ = the signed
4-neighbour Laplacian with zero padding (stated "Laplacian gradient operator"; kernel and padding
inferred from MFF-GAN).  One discriminator judges intensity images and gradient maps alike.

Inferred (spec ``gipc_gan.md`` §6, ``docs/gipcgan.md``):

* ``‖·‖²_F`` is a mean over pixels and batch (FusionGAN/MFF-GAN code convention); a literal sum
  would only rescale λ by B·H·W.
* Soft labels: every term draws its own label tensor, shape [B, 1], fresh at every evaluation.
* D sees *signed* Laplacians (the paper writes ∇I, not |∇I| as MFF-GAN); ``d_grad="abs"`` option.
* A term whose weight is 0 is not evaluated (no D call): identical gradients, and the ablation runs
  (``--without-int`` / ``--without-gra``) do not pay for — or feed BN with — terms they drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from fusion_tf.core import ops
from fusion_tf.objectives import lsgan

D_GRAD_MODES = ("signed", "abs")


@dataclass(frozen=True)
class GIPCGANLossWeights:
    """Stated constants: λ 9.3, β1 1.3, β2 4.5, λ1 0.1, λ2 1, λ3 = λ5 = 0.1, λ4 = λ6 = 1.

    λ1/λ3/λ5 weight intensity terms, λ2/λ4/λ6 gradient terms (the 1:10 "proportional maintenance").
    Labels: real-type (a1, a2, c1, c2) ~ U(real_labels), fake-type (b1, b2) ~ U(fake_labels) [stated].
    """

    lam: float = 9.3  # content vs adversarial (Eq. 6)
    beta_int: float = 1.3  # β1, Eq. 10
    beta_grad: float = 4.5  # β2, Eq. 10
    lam1: float = 0.1  # G: D(F) → a1
    lam2: float = 1.0  # G: D(∇F) → a2
    lam3: float = 0.1  # D: D(F) → b1
    lam4: float = 1.0  # D: D(∇F) → b2
    lam5: float = 0.1  # D: D(I) → c1
    lam6: float = 1.0  # D: D(∇I) → c2
    real_labels: tuple[float, float] = lsgan.REAL_LABELS
    fake_labels: tuple[float, float] = lsgan.FAKE_LABELS
    d_grad: str = "signed"

    def __post_init__(self):
        if self.d_grad not in D_GRAD_MODES:
            raise ValueError(f"d_grad must be one of {D_GRAD_MODES}, got {self.d_grad!r}")

    def ablated(self, without_int: bool = False, without_gra: bool = False) -> "GIPCGANLossWeights":
        """The paper's ablations, read consistently (spec §11.12): drop every intensity (λ1, λ3, λ5)
        or every gradient (λ2, λ4, λ6) adversarial term.  The paper's text zeroes "λ1 = λ3" and
        "λ2 = λ4" only, mixing G and D weights; set single λs explicitly for that literal reading."""
        changes = {}
        if without_int:
            changes.update(lam1=0.0, lam3=0.0, lam5=0.0)
        if without_gra:
            changes.update(lam2=0.0, lam4=0.0, lam6=0.0)
        return type(self)(**{**self.__dict__, **changes})


def gradient_map(x: tf.Tensor, mode: str = "signed") -> tf.Tensor:
    """∇x as fed to D: the signed Laplacian, or its magnitude (``mode="abs"``, MFF-GAN's choice)."""
    lap = ops.laplacian(x)
    return tf.abs(lap) if mode == "abs" else lap


def content_losses(fused: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(ℓ_int, ℓ_grad)`` = mean (F − I)², mean (∇F − ∇I)² (Eqs. 11–12, signed Laplacian)."""
    l_int = tf.reduce_mean(tf.square(fused - target))
    l_grad = tf.reduce_mean(tf.square(ops.laplacian(fused) - ops.laplacian(target)))
    return l_int, l_grad


def _term(weight: float, critic: Callable[[tf.Tensor], tf.Tensor], x: tf.Tensor, bounds,
          rng: tf.random.Generator) -> tf.Tensor:
    """Unweighted LSGAN term ``mean((D(x) − u)²)``, u ~ U(bounds); skipped (0) when ``weight == 0``."""
    if weight == 0:
        return tf.zeros((), x.dtype)
    pred = critic(x)
    return lsgan.least_squares(pred, lsgan.soft_labels(rng, pred, bounds))


def generator_losses(critic: Callable, fused: tf.Tensor, target: tf.Tensor, rng: tf.random.Generator,
                     w: GIPCGANLossWeights) -> dict:
    """ℓ_G = λ1·adv_int + λ2·adv_grad + λ·(β1·ℓ_int + β2·ℓ_grad) and its parts (Eqs. 6–12).

    ``critic(x)`` is the discriminator call (training-mode BN); terms are returned unweighted so
    logs show what each λ multiplies.
    """
    adv_int = _term(w.lam1, critic, fused, w.real_labels, rng)
    adv_grad = _term(w.lam2, critic, gradient_map(fused, w.d_grad), w.real_labels, rng)
    l_int, l_grad = content_losses(fused, target)
    adversarial = w.lam1 * adv_int + w.lam2 * adv_grad
    content = w.beta_int * l_int + w.beta_grad * l_grad
    return {"g_loss": adversarial + w.lam * content, "g_adv": adversarial, "g_adv_int": adv_int,
            "g_adv_grad": adv_grad, "g_content": content, "l_int": l_int, "l_grad": l_grad}


def discriminator_losses(critic: Callable, fused: tf.Tensor, target: tf.Tensor, rng: tf.random.Generator,
                         w: GIPCGANLossWeights) -> dict:
    """ℓ_D = λ3·D(F)→b1 + λ4·D(∇F)→b2 + λ5·D(I)→c1 + λ6·D(∇I)→c2 (Eqs. 13–17), four separate D calls.

    ``fused`` must already be cut from G's graph (``tf.stop_gradient``).
    """
    fake_int = _term(w.lam3, critic, fused, w.fake_labels, rng)
    fake_grad = _term(w.lam4, critic, gradient_map(fused, w.d_grad), w.fake_labels, rng)
    real_int = _term(w.lam5, critic, target, w.real_labels, rng)
    real_grad = _term(w.lam6, critic, gradient_map(target, w.d_grad), w.real_labels, rng)
    total = w.lam3 * fake_int + w.lam4 * fake_grad + w.lam5 * real_int + w.lam6 * real_grad
    return {"d_loss": total, "d_fake_int": fake_int, "d_fake_grad": fake_grad,
            "d_real_int": real_int, "d_real_grad": real_grad}
