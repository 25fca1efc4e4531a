"""``--strategy`` and ``--mixed-precision``: mirrored replicas equal one device, two workers agree, CLI.

Logical CPU devices must be configured before TensorFlow initialises, and a multi-worker strategy
can be created once per process, so every distributed run here is a subprocess of its own.
"""

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 4


def _python(code: str, *args, env=None, timeout=600) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one ``RESULT <json>`` line."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return _result(proc.stdout)


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def mffgan_store(tmp_path_factory):
    """2 pairs × 16 patches of 60×60 → 8 batches of 4 (as in test_training)."""
    from scipy.ndimage import uniform_filter

    from fusion_tf.data.patches import write_original_layout

    root = tmp_path_factory.mktemp("store")
    base = np.random.default_rng(7).integers(0, 256, (90, 90)).astype(np.uint8)
    write_original_layout(root, [(uniform_filter(base, 3), base), (base, uniform_filter(base, 5))])
    return root


# ----------------------------------------------------------------------------------------------
# (a) MirroredStrategy on two logical CPUs = one device
# ----------------------------------------------------------------------------------------------
MIRRORED_VS_DEFAULT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from fusion_tf.objectives.gipcgan import GIPCGANLossWeights
from fusion_tf.training.distribute import Distribution
from fusion_tf.training.gipcgan import GIPCGANRecipe, GIPCGANTraining
from fusion_tf.training.loop import LoopConfig, fit

run_root, adversarial, runs = sys.argv[1], sys.argv[2] == "1", sys.argv[3].split(",")
rng = np.random.default_rng(0)
batch = {k: rng.uniform(-1, 1, (4, 32, 32, 1)).astype(np.float32) for k in ("near", "far", "gt")}
loss = GIPCGANLossWeights(real_labels=(1.0, 1.0), fake_labels=(0.0, 0.0))  # RNG-free: U(a, a) = a
if not adversarial:  # both ablations: the supervised content loss only (no D, no labels)
    loss = loss.ablated(without_int=True, without_gra=True)
# Adam with ε = 1 steps by ≈ lr·g: the weights then compare gradients.  With the recipe's ε = 1e-8,
# biases that feed BatchNorm (true gradient 0, float noise ~1e-7) move by ±lr with a random sign.
recipe = GIPCGANRecipe(variant="count_matched", patch=32, seed=2, d_steps=1, loss=loss, learning_rate=0.1,
                       epsilon=1.0, lr_decay=False)
result = {}
for run in runs:
    kw = {} if run == "default" else dict(name="mirrored", replicas=2, sync_batch_norm=run == "mirrored")
    dist = Distribution.create(**kw)
    method = dist.build(lambda: GIPCGANTraining(recipe, total_steps=10))
    variables = method.generator.weights + method.discriminator.weights  # BN moving statistics included
    before = [v.numpy() for v in variables]
    out = fit(method, lambda epoch, skip: tf.data.Dataset.from_tensors(batch),
              LoopConfig(run_dir=f"{run_root}/{run}", epochs=1, steps_per_epoch=1, progress=False, distribution=dist))
    np.savez(f"{run_root}/{run}.npz", *[v.numpy() - b for v, b in zip(variables, before)])
    result[run] = {"replicas": dist.replicas, "logs": out.last_logs, "d_steps": method.d_steps,
                   "synchronized": sum(getattr(l, "synchronized", False) for l in method.generator._flatten_layers())}
print("RESULT " + json.dumps(result))
"""


def _deltas(run_root, run):
    with np.load(run_root / f"{run}.npz") as f:
        return [f[k] for k in f.files]


def _compare_mirrored(tmp_path, adversarial: bool, runs=("default", "mirrored")):
    result = _python(MIRRORED_VS_DEFAULT, tmp_path, int(adversarial), ",".join(runs))
    one = _deltas(tmp_path, "default")
    largest = max(float(np.max(np.abs(d))) for d in one)
    assert largest > 1e-2  # the step moved the weights: a mismatch could not hide below the tolerance
    return result, one, largest


def test_mirrored_step_equals_one_device(tmp_path):
    """One GIPC-GAN update (generator with BatchNorm; content loss) on 2 replicas × 2 samples vs 1 × 4:
    same updated weights and BN statistics (sync BN, per-replica losses weighted ½, gradients summed)."""
    result, one, largest = _compare_mirrored(tmp_path, adversarial=False)
    assert result["default"]["replicas"] == 1 and result["mirrored"]["replicas"] == 2
    assert result["mirrored"]["d_steps"] == 0 and result["mirrored"]["synchronized"] > 0
    two = _deltas(tmp_path, "mirrored")
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)) < 1e-6 * max(largest, 1.0)
    for k, v in result["default"]["logs"].items():
        np.testing.assert_allclose(result["mirrored"]["logs"][k], v, rtol=1e-5, err_msg=k)


@pytest.mark.slow
def test_mirrored_gan_iteration_equals_one_device_and_needs_sync_bn(tmp_path):
    """A full adversarial iteration (D update, then G update through D; both with BatchNorm) with
    degenerate labels: equal to one device with synchronised BN, clearly different without it."""
    result, one, largest = _compare_mirrored(tmp_path, adversarial=True, runs=("default", "mirrored", "per_replica"))
    assert result["mirrored"]["d_steps"] == 1
    diff = lambda run: max(float(np.max(np.abs(a - b))) for a, b in zip(one, _deltas(tmp_path, run)))  # noqa: E731
    assert diff("mirrored") < 1e-6 * max(largest, 1.0)
    assert diff("per_replica") > 1e-3


# ----------------------------------------------------------------------------------------------
# (b) two localhost workers with MultiWorkerMirroredStrategy
# ----------------------------------------------------------------------------------------------
WORKER = """
import json, sys
from fusion_tf.training.distribute import Distribution
dist = Distribution.create("multiworker")  # before any other TensorFlow work
import numpy as np
from fusion_tf.data.patches import open_patch_store
from fusion_tf.data.pipeline import patch_dataset, steps_per_epoch
from fusion_tf.training.loop import LoopConfig, fit
from fusion_tf.training.mffgan import MFFGANRecipe, MFFGANTraining

store_dir, run_dir, weights_out = sys.argv[1:4]
store = open_patch_store(store_dir)
recipe = MFFGANRecipe(batch_size=4, epochs=1, d_steps=1, shuffle=True, seed=3, patch=store.patch)
method = dist.build(lambda: MFFGANTraining(recipe))
out = fit(method, lambda epoch, skip: patch_dataset(store, 4, epoch, True, recipe.seed, skip),
          LoopConfig(run_dir=run_dir, epochs=1, steps_per_epoch=steps_per_epoch(store, 4), max_steps=2,
                     progress=False, distribution=dist), recipe=recipe)
np.savez(weights_out, *[v.numpy() for v in method.generator.weights + method.discriminator.weights])
print("RESULT " + json.dumps({"chief": dist.is_chief, "replicas": dist.replicas, "step": out.step,
                              "logs": out.last_logs}))
"""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights(mffgan_store, tmp_path):
    """2 MFF-GAN iterations (D then G update; 1 D step keeps tracing short), global batch 4 = 2 workers × 2: both end
    with bit-identical networks; only the chief writes the run folder, the other's temp folder is gone."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    run = tmp_path / "run"
    procs = []
    for i in range(2):
        tmp = tmp_path / f"tmp{i}"
        tmp.mkdir()
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   TMPDIR=str(tmp))
        procs.append(subprocess.Popen([sys.executable, "-c", textwrap.dedent(WORKER), str(mffgan_store), str(run),
                                       str(tmp_path / f"w{i}.npz")], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=600)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-4000:]
    results = [_result(out) for out in outputs]
    assert [r["chief"] for r in results] == [True, False]
    assert all(r["replicas"] == 2 and r["step"] == 2 for r in results)
    assert results[0]["logs"] == results[1]["logs"]  # reduced over replicas: the same on every worker
    with np.load(tmp_path / "w0.npz") as a, np.load(tmp_path / "w1.npz") as b:
        assert len(a.files) > 10
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    # each worker trained on its own half of every global batch: the first step's content loss (no
    # RNG; G not yet updated) reduced over the workers is the one-device value of the whole batch
    import keras

    from fusion_tf.data.patches import open_patch_store
    from fusion_tf.data.pipeline import patch_dataset
    from fusion_tf.models.mffgan import build_generator
    from fusion_tf.objectives import mffgan as objective

    keras.utils.set_random_seed(3)  # MFFGANTraining's seed: the same initial generator
    generator = build_generator()
    batch = next(iter(patch_dataset(open_patch_store(mffgan_store), 4, 0, True, 3)))
    l_int, l_grad = objective.content_losses(generator([batch["near"], batch["far"]], training=True),
                                             batch["near"], batch["far"], *objective.screening_maps(batch["near"], batch["far"]))
    with open(run / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["1", "2"]
    np.testing.assert_allclose([float(rows[0]["l_int"]), float(rows[0]["l_grad"])], [float(l_int), float(l_grad)], rtol=1e-5)
    with np.load(tmp_path / "w0.npz") as a:  # and training changed the weights
        assert any(not np.array_equal(a[f"arr_{i}"], w.numpy()) for i, w in enumerate(generator.weights))
    assert (run / "generator.weights.h5").is_file() and (run / "recipe.json").is_file()
    assert list((tmp_path / "tmp1").iterdir()) == []  # the non-chief's checkpoint folder was deleted


# ----------------------------------------------------------------------------------------------
# (c) the command line
# ----------------------------------------------------------------------------------------------
def test_cli_mirrored_smoke(mffgan_store, tmp_path):
    """``train mffgan --strategy mirrored --replicas 2 --mixed-precision bfloat16 --jit``: 2 steps on
    2 logical CPUs in bfloat16 (float16 needs a GPU); --jit is overridden with a note."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "fusion_tf.cli", "train", "mffgan", "--store", str(mffgan_store), "--run-dir",
           str(run), "--batch-size", str(BATCH), "--strategy", "mirrored", "--replicas", "2", "--max-steps", "2",
           "--d-steps", "1", "--mixed-precision", "bfloat16", "--jit", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "mirrored strategy, 2 replicas" in proc.stdout and "global batch 4" in proc.stdout
    assert "mixed_bfloat16" in proc.stdout
    assert "trains without XLA" in proc.stdout
    with open(run / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("d_loss", "g_loss", "l_int"))
    from fusion_tf.models.mffgan import build_generator
    from fusion_tf.weights.own import load_keras_weights

    load_keras_weights(build_generator(), run / "generator.weights.h5")


def test_cli_refuses_bad_settings(mffgan_store, tmp_path, capsys, monkeypatch):
    from fusion_tf.cli import main

    base = ["train", "mffgan", "--store", str(mffgan_store), "--run-dir", str(tmp_path / "r"), "--quiet"]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(base + ["--strategy", "multiworker"]) == 2
    assert "TF_CONFIG" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert main(base + ["--strategy", "multiworker"]) == 2
    assert "TF_CONFIG is not a valid" in capsys.readouterr().err
    assert main(base + ["--replicas", "2"]) == 2
    assert "--strategy mirrored" in capsys.readouterr().err
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        assert main(base + ["--mixed-precision"]) == 2
        assert "needs a GPU" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was written


OTHER_TRAINERS = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from fusion_tf.cli import main
from fusion_tf.data import gacn, mfifgan
from fusion_tf.training.distribute import Distribution
from fusion_tf.training.loop import LoopConfig, fit
from fusion_tf.training.mfifgan import MFIFGANRecipe, MFIFGANTraining

root = sys.argv[1]
rng = np.random.default_rng(0)
result = {}
# GACN through the CLI: epoch 1 on one device, resumed for epoch 2 on 2 replicas (validation between)
images = rng.integers(0, 256, (6, 64, 64), dtype=np.uint8)
masks = np.zeros((6, 64, 64), np.uint8)
masks[:, 16:48, 12:40] = 255
gacn.write_store(f"{root}/gacn.h5", images, masks, [f"s{i}" for i in range(6)], gacn.split_indices(6, seed=1),
                 {"source": {"kind": "test"}})
args = ["train", "gacn", "--store", f"{root}/gacn.h5", "--run-dir", f"{root}/gacn", "--epochs", "2",
        "--batch-size", "2", "--crop", "48", "--quiet"]
result["gacn_default"] = main(args + ["--max-steps", "2"])
result["gacn_mirrored"] = main(args + ["--strategy", "mirrored", "--replicas", "2"])
# MFIF-GAN: 10 critic iterations, G every 5th on the critic's batch (separate D and G functions)
a, b = (rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8) for _ in range(2))
maps = np.zeros((20, 32, 32), np.uint8)
maps[:, 8:24, 8:24] = 255
store = mfifgan.open_store(mfifgan.write_store(f"{root}/mfif.h5", a, b, maps, [str(i) for i in range(20)], {}))
dist = Distribution.create("mirrored", 2)
method = dist.build(lambda: MFIFGANTraining(MFIFGANRecipe(image_size=32, se_blocks=1)))
out = fit(method, lambda epoch, skip: mfifgan.train_dataset(store, 2, epoch, 0, skip),
          LoopConfig(run_dir=f"{root}/mfif", epochs=1, steps_per_epoch=10, progress=False, distribution=dist))
result["mfif"] = {"step": out.step, "logs": out.last_logs, "g": int(method.g_optimizer.iterations.numpy()),
                  "d": int(method.d_optimizer.iterations.numpy())}
print("RESULT " + json.dumps(result))
"""


@pytest.mark.slow
def test_mirrored_gacn_resume_and_mfifgan_schedule(tmp_path):
    """GACN resumes a one-device checkpoint on 2 replicas and validates after each epoch; MFIF-GAN's
    5:1 critic schedule (separately compiled D and G steps) runs replicated."""
    result = _python(OTHER_TRAINERS, tmp_path)
    assert result["gacn_default"] == 0 and result["gacn_mirrored"] == 0
    assert [line.split(",")[0] for line in (tmp_path / "gacn/val.csv").read_text().splitlines()[1:]] == ["1", "2"]
    assert "lr" in (tmp_path / "gacn/log.csv").read_text().splitlines()[0]
    mfif = result["mfif"]
    assert mfif["step"] == 10 and mfif["g"] == 2 and mfif["d"] == 10
    assert all(np.isfinite(v) for v in mfif["logs"].values())


# ----------------------------------------------------------------------------------------------
# mixed precision (in process: the policy is restored after the method is built)
# ----------------------------------------------------------------------------------------------
def _mixed_method(precision):
    import keras

    from fusion_tf.training.distribute import Distribution
    from fusion_tf.training.mffgan import MFFGANRecipe, MFFGANTraining

    dist = Distribution.create(mixed_precision=precision, require_gpu_for_float16=False)
    method = dist.build(lambda: MFFGANTraining(MFFGANRecipe(batch_size=BATCH, seed=3, d_steps=1)))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored: later models are float32
    assert method.generator.layer1.compute_dtype == precision
    assert method.discriminator.line_5.compute_dtype == precision
    assert all(v.dtype == "float32" for v in method.generator.weights + method.discriminator.weights)
    scaled = isinstance(method.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == isinstance(method.d_optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "float16")
    return dist, method, scaled


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_mixed_precision_build(precision):
    """16-bit compute, float32 variables, loss scaling for float16 only (bfloat16 has float32's range)."""
    _mixed_method(precision)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_steps(precision, mffgan_store, tmp_path):
    """Two training steps in 16 bits (float16 on CPU took minutes on the loaded 2-core box)."""
    from fusion_tf.data.patches import open_patch_store
    from fusion_tf.data.pipeline import patch_dataset
    from fusion_tf.training.loop import LoopConfig, fit

    dist, method, scaled = _mixed_method(precision)
    store = open_patch_store(mffgan_store)
    before = [v.numpy() for v in method.generator.trainable_weights]
    out = fit(method, lambda e, s: patch_dataset(store, BATCH, e, False, 0, s),
              LoopConfig(run_dir=str(tmp_path / "run"), epochs=1, steps_per_epoch=8, max_steps=2, progress=False,
                         distribution=dist))
    assert out.step == 2 and all(np.isfinite(v) for v in out.last_logs.values())
    changed = any(not np.array_equal(b, v.numpy()) for b, v in zip(before, method.generator.trainable_weights))
    if scaled:
        # dynamic loss scaling: an overflowing step is skipped and halves the scale (from 2^15)
        skipped = 2 - int(method.g_optimizer.iterations.numpy())
        assert float(method.g_optimizer.dynamic_scale.numpy()) == 2.0 ** (15 - skipped)
        assert changed == (skipped < 2)
    else:
        assert changed
