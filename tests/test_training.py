"""Training loop: resumable runs (weights, optimizer state, data order, RNG), NaN guard, kill + resume."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.data.patches import open_patch_store, write_original_layout
from fusion_tf.data.pipeline import patch_dataset, steps_per_epoch
from fusion_tf.errors import TrainingDiverged
from fusion_tf.training.loop import LoopConfig, fit
from fusion_tf.training.mffgan import MFFGANRecipe, MFFGANTraining

BATCH = 4


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("store")
    base = rng.integers(0, 256, (90, 90)).astype(np.uint8)
    # a smooth "near" and a sharper "far" so the screening maps are not trivial
    from scipy.ndimage import uniform_filter

    pairs = [(uniform_filter(base, 3), base), (base, uniform_filter(base, 5))]
    write_original_layout(root, pairs)  # 2 × 16 = 32 patches → 8 batches of 4
    return root


def _run(store_dir, run_dir, max_steps, epochs=2, jit=False):
    store = open_patch_store(store_dir)
    recipe = MFFGANRecipe(batch_size=BATCH, epochs=epochs, shuffle=True, seed=3)
    method = MFFGANTraining(recipe)
    config = LoopConfig(run_dir=str(run_dir), epochs=epochs, steps_per_epoch=steps_per_epoch(store, BATCH),
                        jit_compile=jit, max_steps=max_steps, progress=False)
    result = fit(method, lambda e, s: patch_dataset(store, BATCH, e, True, recipe.seed, s), config, recipe)
    return method, result


def test_resumed_run_equals_uninterrupted_run(store_dir, tmp_path):
    straight, r1 = _run(store_dir, tmp_path / "a", max_steps=11)
    assert r1.step == 11  # crosses the epoch boundary at step 8
    _, r2 = _run(store_dir, tmp_path / "b", max_steps=5)
    assert r2.step == 5 and not r2.finished
    resumed, r3 = _run(store_dir, tmp_path / "b", max_steps=11)
    assert r3.step == 11
    assert int(resumed.g_optimizer.iterations.numpy()) == 11
    assert int(resumed.d_optimizer.iterations.numpy()) == 22  # two D updates per G update
    for a, b in zip(straight.generator.weights + straight.discriminator.weights,
                    resumed.generator.weights + resumed.discriminator.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)
    for a, b in zip(straight.g_optimizer.variables, resumed.g_optimizer.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)
    # the log was continued, not duplicated
    rows = (tmp_path / "b/log.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 12))
    assert (tmp_path / "b/generator.weights.h5").is_file()


def test_xla_step_runs_and_learns(store_dir, tmp_path):
    method, result = _run(store_dir, tmp_path / "xla", max_steps=3, jit=True)
    assert result.step == 3 and all(np.isfinite(v) for v in result.last_logs.values())
    assert set(result.last_logs) == {"d_loss", "g_loss", "g_adv", "l_int", "l_grad"}


def test_nan_loss_stops_and_keeps_last_good_checkpoint(store_dir, tmp_path):
    method, _ = _run(store_dir, tmp_path / "nan", max_steps=2)
    ckpt_before = tf.train.latest_checkpoint(str(tmp_path / "nan/checkpoints"))
    weights_before = (tmp_path / "nan/generator.weights.h5").read_bytes()
    # poison the generator so the next step's loss is NaN
    store = open_patch_store(store_dir)
    recipe = MFFGANRecipe(batch_size=BATCH, epochs=2, shuffle=True, seed=3)
    method = MFFGANTraining(recipe)
    config = LoopConfig(run_dir=str(tmp_path / "nan"), epochs=2, steps_per_epoch=steps_per_epoch(store, BATCH),
                        max_steps=6, progress=False)

    def poisoned(epoch, skip):
        return patch_dataset(store, BATCH, epoch, True, recipe.seed, skip).map(
            lambda b: {k: v * np.float32("nan") for k, v in b.items()})

    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        fit(method, poisoned, config, recipe)
    assert tf.train.latest_checkpoint(str(tmp_path / "nan/checkpoints")) == ckpt_before
    assert (tmp_path / "nan/generator.weights.h5").read_bytes() == weights_before


def test_killed_cli_run_resumes_at_saved_step(store_dir, tmp_path):
    """A real SIGKILL mid-run: the restarted command continues from the last checkpoint."""
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "fusion_tf.cli", "train", "mffgan", "--store", str(store_dir),
           "--run-dir", str(run_dir), "--batch-size", str(BATCH), "--epochs", "50", "--save-every", "2",
           "--no-jit", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
            if latest and int(latest.rsplit("-", 1)[1]) >= 4:
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint written in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = int(tf.train.latest_checkpoint(str(run_dir / "checkpoints")).rsplit("-", 1)[1])
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints"))
    saved_iters = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
                   if "g_optimizer" in k and "iteration" in k}
    assert list(saved_iters.values()) == [saved]
    out = subprocess.run(cmd + ["--max-steps", str(saved + 2)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"at step {saved}" in out.stdout  # "resumed from …/ckpt-N at step N"
    assert f"paused (resume with the same command) at step {saved + 2}" in out.stdout
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints"))
    iters = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if "g_optimizer" in k and "iteration" in k]
    assert iters == [saved + 2]


def test_sigterm_saves_the_current_step(store_dir, tmp_path):
    """SIGTERM (kill, pre-emption, a background run that ignores Ctrl-C) saves like Ctrl-C, then stops."""
    import os

    store = open_patch_store(store_dir)
    recipe = MFFGANRecipe(batch_size=BATCH, epochs=2, shuffle=True, seed=3)
    method = MFFGANTraining(recipe)
    config = LoopConfig(run_dir=str(tmp_path / "term"), epochs=2, steps_per_epoch=steps_per_epoch(store, BATCH),
                        save_every=100, progress=False)
    fed = []

    def batches(epoch, skip):
        for batch in patch_dataset(store, BATCH, epoch, True, recipe.seed, skip):
            fed.append(1)
            if len(fed) == 4:  # steps 1–3 done: terminate before the 4th runs
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        fit(method, batches, config, recipe)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is only installed while training
    assert tf.train.latest_checkpoint(str(tmp_path / "term/checkpoints")).endswith("ckpt-3")
    assert (tmp_path / "term/generator.weights.h5").is_file()
