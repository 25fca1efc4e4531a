"""MFF-GAN's fused training iteration equals the literal recipe (2 D updates, then 1 G update).

The literal formulation is re-written here from the public pieces (networks, objective, optimizers),
as the trainer computed it before the iteration was fused: every update recomputes the generator
output and the gradient maps itself.  Two networks start from the same seed (same weights, same
soft-label RNG state) and are fed the same batches; losses, weights and optimizer slots must agree.
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import uniform_filter

from fusion_tf.objectives import mffgan as objective
from fusion_tf.training.loop import float32
from fusion_tf.training.mffgan import MFFGANRecipe, MFFGANTraining

BATCH, PATCH, ITERATIONS = 4, 32, 3  # 32 is the smallest patch the discriminator's four strided convs take
RECIPE = MFFGANRecipe(batch_size=BATCH, patch=PATCH, seed=5)


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(3)
    out = []
    for _ in range(ITERATIONS):
        sharp = rng.uniform(-1, 1, (BATCH, PATCH, PATCH, 1)).astype(np.float32)
        smooth = uniform_filter(sharp, size=(1, 5, 5, 1)).astype(np.float32)
        # half the patches near-focused, half far-focused: both screening maps are non-trivial
        near = np.concatenate([sharp[: BATCH // 2], smooth[BATCH // 2:]])
        far = np.concatenate([smooth[: BATCH // 2], sharp[BATCH // 2:]])
        out.append({"near": tf.constant(near), "far": tf.constant(far)})
    return out


# ----------------------------------------------------------------------------------------------
# The literal formulation (the trainer's d_step / g_step before the iteration was fused)
# ----------------------------------------------------------------------------------------------
def literal_d_step(m: MFFGANTraining, batch) -> dict:
    near, far = batch["near"], batch["far"]
    fused = tf.stop_gradient(float32(m.generator([near, far], training=True)))
    with tf.GradientTape() as tape:
        d_real = float32(m.discriminator(objective.joint_gradient(near, far), training=True))
        d_fake = float32(m.discriminator(objective.fused_gradient(fused), training=True))
        loss = objective.discriminator_loss(d_real, d_fake, m.rng)
    m.d_optimizer.apply(tape.gradient(loss, m.discriminator.trainable_variables), m.discriminator.trainable_variables)
    return {"d_loss": loss}


def literal_g_step(m: MFFGANTraining, batch) -> dict:
    near, far = batch["near"], batch["far"]
    s_near, s_far = objective.screening_maps(near, far)
    with tf.GradientTape() as tape:
        fused = float32(m.generator([near, far], training=True))
        l_int, l_grad = objective.content_losses(fused, near, far, s_near, s_far)
        d_fake = float32(m.discriminator(objective.fused_gradient(fused), training=True))
        total, adv, _ = objective.generator_loss(d_fake, l_int, l_grad, m.rng, m.recipe.loss)
    m.g_optimizer.apply(tape.gradient(total, m.generator.trainable_variables), m.generator.trainable_variables)
    return {"g_loss": total, "g_adv": adv, "l_int": l_int, "l_grad": l_grad}


def literal_iteration(m: MFFGANTraining, batch) -> dict:
    logs = {}
    for _ in range(m.recipe.d_steps):
        logs.update(literal_d_step(m, batch))
    logs.update(literal_g_step(m, batch))
    return logs


def _train(step, batches, compiled):
    """Losses of ``step`` on each batch: op by op, or as the loop runs it (one tf.function)."""
    fn = tf.function(step) if compiled else step
    return [{k: float(v) for k, v in fn(b).items()} for b in batches]


def _literal(m: MFFGANTraining):
    def step(batch):
        return literal_iteration(m, batch)

    return step


def _state(m: MFFGANTraining) -> dict:
    """Every variable an iteration changes: weights, BN statistics, Adam slots, RNG state."""
    out = {v.path: v.numpy() for v in m.generator.weights + m.discriminator.weights}
    for name, opt in (("g", m.g_optimizer), ("d", m.d_optimizer)):
        out.update({f"{name}_opt/{i}:{v.name}": v.numpy() for i, v in enumerate(opt.variables)})
    out["rng"] = m.rng.state.numpy()
    return out


#: conv biases that feed BatchNorm (plus layer_1's, whose activations sit almost entirely on the
#: linear side of the leaky ReLU before BN) have a zero or near-zero true gradient: what is left is
#: float rounding, which Adam scales to steps of size ~lr.  Any compiled graph with other rounding (the
#: literal formulation compiled vs run eagerly, too) moves them, their Adam slots and the BN moving
#: means that track them by O(lr).  The eager test compares them as well.
NOISE_DRIVEN = ("discriminator_layer_1_bias", "discriminator_layer_2_bias", "discriminator_layer_3_bias",
                "discriminator_layer_4_bias", "moving_mean")


def assert_same_training(ref_logs, ref, logs, method, rtol, skip=()):
    """Losses elementwise to ``rtol``; every variable to ``rtol`` relative to its largest entry."""
    assert len(logs) == len(ref_logs)
    for i, (a, b) in enumerate(zip(ref_logs, logs)):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=rtol, err_msg=f"iteration {i + 1}: {k}")
    sa, sb = _state(ref), _state(method)
    assert sa.keys() == sb.keys()
    np.testing.assert_array_equal(sb.pop("rng"), sa.pop("rng"))  # the same number of soft-label draws
    for k in sa:
        if any(s in k.replace("/", "_") for s in skip):
            continue
        scale = float(np.max(np.abs(sa[k])))
        err = float(np.max(np.abs(sb[k] - sa[k])))
        assert err <= rtol * scale + 1e-30, f"{k}: max |difference| {err:.3g} > {rtol:g} × max |value| {scale:.3g}"
    assert int(method.d_optimizer.iterations.numpy()) == ITERATIONS * RECIPE.d_steps
    assert int(method.g_optimizer.iterations.numpy()) == ITERATIONS


def _pair():
    ref, new = MFFGANTraining(RECIPE), MFFGANTraining(RECIPE)
    for a, b in zip(ref.weights, new.weights):  # same seed → same start (checked, not assumed)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    return ref, new


def test_fused_iteration_is_the_default():
    assert MFFGANTraining(RECIPE).fused_iteration


def test_eager_fused_iteration_equals_literal_recipe(batches):
    """Op by op (no graph optimiser in between) the fused iteration is the literal one."""
    ref, new = _pair()
    ref_logs = _train(_literal(ref), batches, compiled=False)
    logs = _train(new.iteration, batches, compiled=False)
    assert_same_training(ref_logs, ref, logs, new, rtol=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_compiled_iteration_equals_literal_recipe(batches, fused):
    """As the loop runs it (one tf.function per iteration); ``fused=False`` is the kept reference path."""
    ref, new = _pair()
    new.fused_iteration = fused
    ref_logs = _train(_literal(ref), batches, compiled=True)
    logs = _train(new.iteration, batches, compiled=True)
    assert_same_training(ref_logs, ref, logs, new, rtol=1e-5, skip=NOISE_DRIVEN)


class _DetachedAdversarial(MFFGANTraining):
    """A plausible bug of sharing F between the updates: the G loss's adversarial term is computed
    from the *constant* F the D updates used, so no adversarial gradient reaches G.  Every logged loss
    is unchanged; only the generator's weights (and Adam slots) differ."""

    def _g_loss(self, fused, near, far, s_near, s_far):
        l_int, l_grad = objective.content_losses(fused, near, far, s_near, s_far)
        d_fake = float32(self.discriminator(objective.fused_gradient(tf.stop_gradient(fused)), training=True))
        total, adv, _ = objective.generator_loss(d_fake, l_int, l_grad, self.rng, self.recipe.loss)
        return {"g_loss": total, "g_adv": adv, "l_int": l_int, "l_grad": l_grad}


def test_comparison_catches_a_subtly_wrong_iteration(batches):
    """The compiled check above can fail, even for a bug that leaves every logged loss as it was."""
    ref, bad = MFFGANTraining(RECIPE), _DetachedAdversarial(RECIPE)
    ref_logs = _train(_literal(ref), batches, compiled=True)
    logs = _train(bad.iteration, batches, compiled=True)
    for a, b in zip(ref_logs, logs):  # the losses alone would not tell
        np.testing.assert_allclose([b[k] for k in a], [a[k] for k in a], rtol=1e-5)
    with pytest.raises(AssertionError, match="fusion_model"):
        assert_same_training(ref_logs, ref, logs, bad, rtol=1e-5, skip=NOISE_DRIVEN)
