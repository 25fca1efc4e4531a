"""GACN training: the plain train step, the learning-rate schedule and a tiny resumable CLI run."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.data import gacn as data
from fusion_tf.models.gacn import build_gacn
from fusion_tf.weights.resolve import load_weights
from fusion_tf.training import gacn as T


def _batch(n=2, size=64, seed=0):
    image = tf.random.stateless_uniform([n, size, size, 1], [seed, 1])
    yy, xx = np.mgrid[:size, :size]
    disk = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2).astype(np.float32)
    return image, tf.constant(np.repeat(disk[None, ..., None], n, 0))


def test_train_step_updates_weights_and_bn_statistics():
    model = build_gacn()
    recipe = T.GACNRecipe(batch_size=2)
    optimizer = recipe.adam(steps_per_epoch=5)
    optimizer.build(model.trainable_variables)
    rng = tf.random.Generator.from_seed(1)
    step = tf.function(lambda b: T.train_step(model, optimizer, b, rng))
    kernel0 = model.decision_path_conv1.conv.kernel.numpy().copy()
    fe_mean0 = model.feature_extraction_conv0.bn.moving_mean.numpy().copy()
    dp_mean0 = model.decision_path_conv4.bn.moving_mean.numpy().copy()
    logs = [step(_batch(seed=i)) for i in range(3)]
    for entry in logs:
        assert set(entry) == {"loss", "dice", "qg"}
        assert all(np.isfinite(float(v)) for v in entry.values())
        assert float(entry["loss"]) == pytest.approx(float(entry["dice"]) + float(entry["qg"]), rel=1e-6)
    assert int(optimizer.iterations) == 3
    assert not np.allclose(model.decision_path_conv1.conv.kernel.numpy(), kernel0)
    assert not np.allclose(model.feature_extraction_conv0.bn.moving_mean.numpy(), fe_mean0)
    assert not np.allclose(model.decision_path_conv4.bn.moving_mean.numpy(), dp_mean0)


def test_learning_rate_decays_by_0_8_every_two_epochs():
    recipe = T.GACNRecipe()
    assert recipe.steps_per_epoch(4050) == 254
    lr = recipe.lr_schedule(254)
    for step, want in [(0, 1e-4), (507, 1e-4), (508, 0.8e-4), (1016, 0.64e-4), (49 * 254, 1e-4 * 0.8**24)]:
        assert float(lr(step)) == pytest.approx(want, rel=1e-6)


def test_recipe_is_frozen():
    with pytest.raises(Exception):
        T.GACNRecipe().batch_size = 3


def _tiny_store(path, count=6, size=64):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    masks = np.zeros((count, size, size), np.uint8)
    masks[:, 16:48, 12:40] = 255
    split = data.split_indices(count, seed=1)
    data.write_store(path, images, masks, [f"s{i}" for i in range(count)], split, {"source": {"kind": "test"}})
    return path


def _args(store, run_dir, **kw):
    base = dict(store=str(store), run_dir=str(run_dir), epochs=2, batch_size=2, lr=1e-4, seed=1, crop=48,
                jit=False, save_every=0, max_steps=None, quiet=True)
    base.update(kw)
    return argparse.Namespace(**base)


def test_train_command_validates_keeps_best_and_resumes(tmp_path, capsys):
    store = _tiny_store(tmp_path / "tiny.h5")
    run = tmp_path / "run"
    # 4 train images, batch 2 → 2 steps/epoch; stop after epoch 1 then resume to the end
    assert T.train(_args(store, run, max_steps=2)) == 0
    out = capsys.readouterr().out
    assert "epoch 1:" in out and "paused" in out
    assert T.train(_args(store, run)) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "epoch 2:" in out and "finished at step 4" in out
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["batch_size"] == 2 and recipe["lr_decay"] == 0.8 and recipe["crop"] == 48
    lines = (run / "val.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
    best = json.loads((run / "best.json").read_text())
    assert best["epoch"] in (1, 2) and np.isfinite(best["val_loss"])
    # both weight files load into the inference network
    load_weights("gacn", build_gacn(), run / T.BEST_WEIGHTS)
    load_weights("gacn", build_gacn(), run / "gacn.weights.h5")
    load_weights("gacn", build_gacn(), run)  # a run folder works as --weights too
    # running again does nothing more (and validates nothing twice)
    assert T.train(_args(store, run)) == 0
    assert len((run / "val.csv").read_text().splitlines()) == 3
