"""GIPC-GAN objective: hand-computed losses, soft labels, and each λ weighting its own term.

The per-term tests differentiate the training method's own loss functions with hard labels, so the
gradients are deterministic: a term's gradient must vanish when its λ is 0, double when λ doubles,
and the full loss's gradient must be the sum of the six terms' (nothing else adversarial hides in it).
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.core import ops
from fusion_tf.objectives import gipcgan as objective
from fusion_tf.training.gipcgan import GIPCGANRecipe, GIPCGANTraining, recipe_from_args

HARD = dict(real_labels=(1.0, 1.0), fake_labels=(0.0, 0.0))
D_TERMS = {"lam3": "d_fake_int", "lam4": "d_fake_grad", "lam5": "d_real_int", "lam6": "d_real_grad"}
G_TERMS = {"lam1": "g_adv_int", "lam2": "g_adv_grad"}
ZERO = dict(lam1=0.0, lam2=0.0, lam3=0.0, lam4=0.0, lam5=0.0, lam6=0.0)


def _critic(x):
    """A fixed "discriminator": per-sample mean, shape [B, 1]."""
    return tf.reduce_mean(x, axis=[1, 2])


def test_losses_equal_hand_computed_values():
    rng_np = np.random.default_rng(0)
    fused = tf.constant(rng_np.uniform(-1, 1, (2, 8, 8, 1)), tf.float32)
    target = tf.constant(rng_np.uniform(-1, 1, (2, 8, 8, 1)), tf.float32)
    w = objective.GIPCGANLossWeights(**HARD)
    rng = tf.random.Generator.from_seed(0)
    g = objective.generator_losses(_critic, fused, target, rng, w)
    d = objective.discriminator_losses(_critic, fused, target, rng, w)

    f, t = fused.numpy(), target.numpy()
    lap_f, lap_t = ops.laplacian(fused).numpy(), ops.laplacian(target).numpy()
    m = lambda x: x.mean(axis=(1, 2))  # noqa: E731
    l_int, l_grad = np.mean((f - t) ** 2), np.mean((lap_f - lap_t) ** 2)
    adv = 0.1 * np.mean((m(f) - 1) ** 2) + 1.0 * np.mean((m(lap_f) - 1) ** 2)
    np.testing.assert_allclose(g["g_loss"], adv + 9.3 * (1.3 * l_int + 4.5 * l_grad), rtol=1e-5)
    np.testing.assert_allclose(g["g_content"], 1.3 * l_int + 4.5 * l_grad, rtol=1e-5)
    d_ref = (0.1 * np.mean(m(f) ** 2) + 1.0 * np.mean(m(lap_f) ** 2)
             + 0.1 * np.mean((m(t) - 1) ** 2) + 1.0 * np.mean((m(lap_t) - 1) ** 2))
    np.testing.assert_allclose(d["d_loss"], d_ref, rtol=1e-5)
    # the option feeds D |∇x| instead of the signed Laplacian
    d_abs = objective.discriminator_losses(_critic, fused, target, rng, dataclasses.replace(w, d_grad="abs"))
    np.testing.assert_allclose(d_abs["d_fake_grad"], np.mean(m(np.abs(lap_f)) ** 2), rtol=1e-5)


def test_soft_labels_are_fresh_and_in_range():
    w = objective.GIPCGANLossWeights()
    rng = tf.random.Generator.from_seed(1)
    zeros = tf.zeros((64, 4, 4, 1))

    @tf.function
    def terms():
        d = objective.discriminator_losses(_critic, zeros, zeros, rng, w)
        return d["d_fake_int"], d["d_real_int"]

    (f1, r1), (f2, r2) = terms(), terms()
    assert float(f1) != float(f2) and float(r1) != float(r2)  # not frozen at trace time
    # D(x) = 0: the terms are mean(u²); u ~ U(0, 0.3) → E = 0.03, u ~ U(0.7, 1.2) → E ≈ 0.903
    assert 0.0 < float(f1) < 0.09 and 0.49 < float(r1) < 1.44
    assert abs(float(f1) - 0.03) < 0.015 and abs(float(r1) - 0.9033) < 0.1


@pytest.fixture(scope="module")
def method():
    # 32×32 patches (D: 32 → 15 → 7 → 3 → 1) keep this fast; the wiring is that of 80×80
    return GIPCGANTraining(GIPCGANRecipe(batch_size=2, seed=5, patch=32))


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(3)
    gt = rng.uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    return {"near": tf.constant(gt * 0.5), "far": tf.constant(gt * 0.8), "gt": tf.constant(gt)}


def _grads(method, batch, which, **weights):
    w = objective.GIPCGANLossWeights(**{**HARD, **weights})
    net = method.discriminator if which == "d" else method.generator
    with tf.GradientTape() as tape:
        logs = (method.d_losses if which == "d" else method.g_losses)(batch, w)
    key = "d_loss" if which == "d" else "g_loss"
    grads = tape.gradient(logs[key], net.trainable_variables)
    flat = np.concatenate([np.zeros(int(np.prod(v.shape))) if g is None else g.numpy().ravel()
                           for g, v in zip(grads, net.trainable_variables)])
    return flat, {k: float(v) for k, v in logs.items()}


@pytest.mark.parametrize("which, terms", [("d", D_TERMS), ("g", G_TERMS)])
def test_each_adversarial_term_is_present_and_weighted(method, batch, which, terms):
    base = {**ZERO, "lam": 0.0}  # content off: only adversarial terms remain in ℓ_G
    zero, zlogs = _grads(method, batch, which, **base)
    assert np.abs(zero).max() == 0
    stated = objective.GIPCGANLossWeights()
    weighted = 0.0
    for lam, term in terms.items():
        one, logs = _grads(method, batch, which, **{**base, lam: 1.0})
        two, _ = _grads(method, batch, which, **{**base, lam: 2.0})
        assert logs[term] > 0 and np.abs(one).max() > 0, f"{term} missing"
        assert zlogs[term] == 0.0
        np.testing.assert_allclose(two, 2 * one, rtol=0, atol=1e-4 * np.abs(one).max())
        weighted = weighted + getattr(stated, lam) * one
    full, _ = _grads(method, batch, which, lam=0.0, **{k: getattr(stated, k) for k in ZERO})
    np.testing.assert_allclose(full, weighted, rtol=0, atol=1e-4 * np.abs(full).max())


def test_content_term_weights(method, batch):
    _, logs = _grads(method, batch, "g", **ZERO)
    np.testing.assert_allclose(logs["g_loss"], 9.3 * (1.3 * logs["l_int"] + 4.5 * logs["l_grad"]), rtol=1e-5)
    assert logs["g_adv"] == 0.0


def test_ablation_switches():
    from argparse import Namespace

    base = dict(variant=None, exchange="all_levels", batch_size=32, epochs=10, d_steps=2, lr=1e-4,
                no_lr_decay=False, no_shuffle=False, seed=0, lambdas=None, d_grad="signed")
    w = recipe_from_args(Namespace(**base, without_int=True, without_gra=False)).loss
    assert (w.lam1, w.lam3, w.lam5, w.lam2, w.lam4, w.lam6) == (0, 0, 0, 1, 1, 1)
    w = recipe_from_args(Namespace(**base, without_int=False, without_gra=True)).loss
    assert (w.lam2, w.lam4, w.lam6, w.lam1, w.lam3, w.lam5) == (0, 0, 0, 0.1, 0.1, 0.1)
    r = recipe_from_args(Namespace(**{**base, "lambdas": [0, 1, 0, 1, 0.1, 1]}, without_int=False,
                                   without_gra=False, model="gipcgan-compact"))
    assert r.variant == "count_matched" and (r.loss.lam1, r.loss.lam3, r.loss.lam5) == (0, 0, 0.1)
    # both ablations: nothing adversarial is left, so no D updates are run
    both = GIPCGANRecipe(variant="count_matched", loss=objective.GIPCGANLossWeights().ablated(True, True))
    assert GIPCGANTraining(both).d_steps == 0
