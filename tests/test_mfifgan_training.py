"""MFIF-GAN WGAN-GP: the penalty is taken w.r.t. the map only; 5 critic updates per G update; finite losses."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.data import mfifgan as data
from fusion_tf.models import mfifgan as m
from fusion_tf.objectives import mfifgan as objective


def test_gradient_penalty_linear_critic_uses_map_channel_only(rng):
    """For D(x) = Σ W·x the gradient w.r.t. the map is W[..., 6]: ‖g‖ = ‖W_map‖, A/B weights ignored."""
    w = rng.standard_normal((8, 8, 7)).astype(np.float32) * 0.1
    critic = lambda x, training=None: tf.reduce_sum(x * w, axis=[1, 2, 3], keepdims=True)  # noqa: E731
    a = tf.constant(rng.uniform(-1, 1, (2, 8, 8, 3)), tf.float32)
    b = tf.constant(rng.uniform(-1, 1, (2, 8, 8, 3)), tf.float32)
    f = tf.constant(rng.uniform(0, 1, (2, 8, 8, 1)), tf.float32)
    gp = objective.gradient_penalty(critic, a, b, f)
    np.testing.assert_allclose(gp.numpy(), (np.linalg.norm(w[..., 6]) - 1.0) ** 2, rtol=1e-5)
    assert abs((np.linalg.norm(w) - 1.0) ** 2 - gp.numpy()) > 1e-3


def test_gradient_penalty_real_critic_matches_full_gradient_slice(rng):
    tf.keras.utils.set_random_seed(4)
    d = m.build_discriminator(image_size=32)
    a = tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)), tf.float32)
    b = tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)), tf.float32)
    f = tf.constant(rng.uniform(0, 1, (2, 32, 32, 1)), tf.float32)
    x = m.critic_input(a, b, f)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(d(x, training=True))
    g = tape.gradient(y, x).numpy()
    norms = np.sqrt((g[..., 6:] ** 2).sum(axis=(1, 2, 3)))
    gp = objective.gradient_penalty(d, a, b, f).numpy()
    np.testing.assert_allclose(gp, np.mean((norms - 1) ** 2), rtol=1e-4)
    all_norms = np.sqrt((g**2).sum(axis=(1, 2, 3)))
    assert abs(np.mean((all_norms - 1) ** 2) - gp) > 1e-6
    # interpolation is per sample and detached
    alpha = tf.constant([[[[0.25]]], [[[1.0]]]])
    fake = tf.zeros_like(f)
    mix = objective.interpolate(f, fake, alpha).numpy()
    np.testing.assert_allclose(mix[0], 0.25 * f.numpy()[0])
    np.testing.assert_allclose(mix[1], f.numpy()[1])


def test_coded_lr_decay_schedule():
    from fusion_tf.training.mfifgan import CodedLinearDecay

    d_sched, g_sched = CodedLinearDecay(1e-4, 120_000, 1), CodedLinearDecay(1e-4, 120_000, 5)
    assert float(d_sched(110_999)) == np.float32(1e-4)  # nothing by the released 110k checkpoint
    np.testing.assert_allclose(float(d_sched(111_000)), 1e-4 - 1e-8, rtol=1e-6)
    np.testing.assert_allclose(float(d_sched(119_999)), 1e-4 - 9e-8, rtol=1e-6)
    # G's k-th update happens in critic iteration 5k + 4: update 22,199 → 110,999 (no decay yet), 22,200 → 111,004
    assert float(g_sched(22_199)) == np.float32(1e-4)
    np.testing.assert_allclose(float(g_sched(22_200)), 1e-4 - 1e-8, rtol=1e-6)


def _tiny_store(tmp_path, rng, n=20, s=32):
    a = rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)
    maps = np.zeros((n, s, s), np.uint8)
    maps[:, 8:24, 8:24] = 255
    return data.write_store(tmp_path / "tiny.h5", a, b, maps, [str(i) for i in range(n)], {"source": "synthetic"})


def _check_log(run, steps):
    with open(run / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
    assert [int(r["step"]) for r in rows if r.get("g_loss")] == list(range(5, steps + 1, 5))  # 5 critic : 1 G
    for r in rows:
        for k in ("d_loss", "d_gp", "d_wasserstein") + (("g_loss", "g_adv", "g_l1") if r.get("g_loss") else ()):
            assert np.isfinite(float(r[k])), (k, r)


def test_wgan_gp_iterations_ratio_and_finite_losses(tmp_path, rng):
    """10 critic iterations through the real loop: G updated at steps 5 and 10 only; G's BN stats move in
    critic steps; G's weights do not.  (A 1-block encoder keeps graph tracing short on a 2-core CI box.)"""
    from fusion_tf.training.loop import LoopConfig, fit
    from fusion_tf.training.mfifgan import MFIFGANRecipe, MFIFGANTraining

    store = data.open_store(_tiny_store(tmp_path, rng))
    recipe = MFIFGANRecipe(image_size=32, se_blocks=1)
    method = MFIFGANTraining(recipe)
    g_before = [w.numpy() for w in method.generator.trainable_weights]
    # one critic step by hand: G's moving statistics change, its weights do not
    batch = next(iter(data.train_dataset(store, 2)))
    method.d_step(batch)
    assert all(np.array_equal(w0, w.numpy()) for w0, w in zip(g_before, method.generator.trainable_weights))
    assert not np.allclose(method.generator.line1.bn1.moving_mean.numpy(), 0.0)

    run = tmp_path / "run"
    result = fit(method, lambda epoch, skip: data.train_dataset(store, 2, epoch, 0, skip),
                 LoopConfig(run_dir=str(run), epochs=1, steps_per_epoch=10, max_steps=10, progress=False), recipe={})
    assert result.step == 10 and (run / "generator.weights.h5").is_file()
    _check_log(run, 10)
    assert int(method.g_optimizer.iterations.numpy()) == 2 and int(method.d_optimizer.iterations.numpy()) == 11


@pytest.mark.slow
def test_train_command_full_generator(tmp_path, rng):
    """`fusion-tf train mfifgan` with the full 9-block generator (minutes on a loaded 2-core CPU)."""
    from fusion_tf.cli import main

    store = _tiny_store(tmp_path, rng)
    run = tmp_path / "run"
    assert main(["train", "mfifgan", "--store", str(store), "--run-dir", str(run), "--max-steps", "10", "--no-jit",
                 "--quiet"]) == 0
    _check_log(run, 10)
