"""MFF-GAN networks: parameter counts, TF1 weight import parity, losses on the spec's check values."""

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.core.imageio import read_image
from fusion_tf.errors import WeightsError
from fusion_tf.models.mffgan import build_discriminator, build_generator
from fusion_tf.objectives import mffgan as objective
from fusion_tf.weights.tf1 import is_tf1_checkpoint, load_tf1_checkpoint

MODELS = ("Lytro_model", "MFI-WHU_model")
#: spec mff_gan.md §5: (L_int, L_grad) per model and pair, mean(S_far) per pair
CHECK = {
    "Lytro_model": [(0.000931, 0.001090), (0.001722, 0.001833), (0.001862, 0.004362)],
    "MFI-WHU_model": [(0.000767, 0.000758), (0.001671, 0.001225), (0.001288, 0.001929)],
}
S_FAR = [0.6039, 0.7199, 0.6587]


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def test_parameter_counts():
    g, d = build_generator(), build_discriminator()
    assert _count(g.trainable_weights) == 40_033 and not g.non_trainable_weights
    assert _count(d.trainable_weights) == 389_761
    assert _count(d.non_trainable_weights) == 896


def _pair(ref, i):
    def load(side):
        return (read_image(ref / f"inputs/{side}/{i}.jpg", "grey").astype(np.float32) - 127.5) / 127.5

    return load("near")[None, ..., None], load("far")[None, ..., None]


@pytest.fixture(scope="module")
def loaded(mffgan_ref):
    nets = {}
    for m in MODELS:
        g, d = build_generator(), build_discriminator()
        prefix = mffgan_ref / f"checkpoint/{m}/CGAN.model-19"
        assert is_tf1_checkpoint(prefix)
        load_tf1_checkpoint(prefix, g, d)  # also checks all 48 tensors are consumed
        nets[m] = (g, d)
    return nets


@pytest.mark.parametrize("model", MODELS)
def test_released_weights_reproduce_original_outputs(loaded, mffgan_ref, model):
    g, _ = loaded[model]
    expected = np.load(mffgan_ref / f"expected/{model}_fused_tanh.npz")
    for i in (1, 2, 3):
        near, far = _pair(mffgan_ref, i)
        out = g([near, far]).numpy()[0, ..., 0]
        assert np.abs(out - expected[f"fused_tanh_{i}"]).max() <= 1e-5


@pytest.mark.parametrize("model", MODELS)
def test_content_losses_and_screening_maps_match_spec(loaded, mffgan_ref, model):
    g, _ = loaded[model]
    for i, (l_int_ref, l_grad_ref) in enumerate(CHECK[model], start=1):
        near, far = _pair(mffgan_ref, i)
        fused = g([near, far])
        s_near, s_far = objective.screening_maps(near, far)
        l_int, l_grad = objective.content_losses(fused, near, far, s_near, s_far)
        # the spec prints 3–4 significant digits: compare at that precision (≤ 1e-3 relative + rounding)
        assert float(l_int) == pytest.approx(l_int_ref, rel=1e-3, abs=5e-7)
        assert float(l_grad) == pytest.approx(l_grad_ref, rel=1e-3, abs=5e-7)
        assert float(tf.reduce_mean(s_far)) == pytest.approx(S_FAR[i - 1], abs=5e-5)
        np.testing.assert_array_equal((s_near + s_far).numpy(), 1.0)


def test_screening_ties_go_to_near():
    flat = tf.zeros((1, 8, 8, 1))
    s_near, s_far = objective.screening_maps(flat, flat)
    assert float(tf.reduce_min(s_near)) == 1.0 and float(tf.reduce_max(s_far)) == 0.0


def test_discriminator_always_uses_batch_statistics(rng):
    d = build_discriminator()
    x = tf.constant(rng.normal(size=(4, 60, 60, 1)), tf.float32)
    y = tf.constant(rng.normal(size=(4, 60, 60, 1)) * 3.0, tf.float32)
    alone = d(x, training=False).numpy()
    assert alone.shape == (4, 1)
    together = d(tf.concat([x, y], 0), training=False).numpy()[:4]
    # with moving statistics the first four outputs would not depend on the other samples
    assert np.abs(alone - together).max() > 1e-6


def test_lsgan_soft_labels_are_fresh_each_call():
    rng = tf.random.Generator.from_seed(0)
    pred = tf.zeros((32, 1))
    f = tf.function(lambda: objective.discriminator_loss(pred, pred, rng))
    values = {float(f()) for _ in range(3)}
    assert len(values) == 3  # a NumPy draw would be frozen at trace time
    from fusion_tf.objectives import lsgan

    labels = lsgan.soft_labels(rng, tf.zeros((10000, 1)), lsgan.REAL_LABELS).numpy()
    assert 0.7 <= labels.min() and labels.max() < 1.2


def test_checkpoint_of_another_model_is_refused(tmp_path, mffgan_ref):
    v = tf.Variable(tf.zeros((3, 3)))
    ckpt_prefix = tmp_path / "other"
    tf.train.Checkpoint(v=v).write(str(ckpt_prefix))
    assert not is_tf1_checkpoint(ckpt_prefix)
    with pytest.raises(WeightsError):
        load_tf1_checkpoint(ckpt_prefix, build_generator())
