"""Fault injection on a real run folder: training never loses a run (issue 13).

One tiny MFF-GAN run (checkpoints at steps 2, 4, 6) is made once; each test damages a copy the way
a kill, a full disk or a stray edit would, then runs the real ``fusion-tf train`` command again.
"""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf import cli
from fusion_tf.data.patches import open_patch_store, write_original_layout
from fusion_tf.data.pipeline import patch_dataset, steps_per_epoch
from fusion_tf.training import loop
from fusion_tf.training.mffgan import MFFGANRecipe, MFFGANTraining

BATCH = 4


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("store")
    base = rng.integers(0, 256, (90, 90)).astype(np.uint8)
    write_original_layout(root, [(base, base[::-1].copy()), (base.T.copy(), base)])  # 32 patches, 8 batches
    return root


def _train(store_dir, run_dir, max_steps, *extra):
    return cli.main(["train", "mffgan", "--store", str(store_dir), "--run-dir", str(run_dir),
                     "--batch-size", str(BATCH), "--epochs", "50", "--save-every", "2",
                     "--max-steps", str(max_steps), "--no-jit", "--quiet", *extra])


@pytest.fixture(scope="module")
def trained(store_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("base") / "run"
    assert _train(store_dir, run, 6) == 0
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-2.index", "ckpt-4.index",
                                                                              "ckpt-6.index"]
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _log_steps(run):
    return [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]


def _resume(store_dir, run, capsys, max_steps=8):
    capsys.readouterr()
    code = _train(store_dir, run, max_steps)
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    return code, out, err, warnings


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_garbled_index_file_resumes_at_newest_and_keeps_rotating(store_dir, run, capsys):
    (run / "checkpoints/checkpoint").write_text("model_checkpoint_path: \x00\x17 garbage {{{\n")
    code, out, err, warnings = _resume(store_dir, run, capsys)
    assert code == 0, err
    assert "at step 6" in out and "paused (resume with the same command) at step 8" in out
    assert len(warnings) == 1 and "'checkpoint' index file" in warnings[0]
    assert _log_steps(run) == list(range(1, 9))  # earlier rows kept, no step 0 restart
    # the rewritten index lets the manager rotate: ckpt-2 was deleted when ckpt-8 was saved
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-8")
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-4.index", "ckpt-6.index",
                                                                              "ckpt-8.index"]


def test_truncated_newest_data_file_falls_back_to_older(store_dir, run, capsys):
    data = next((run / "checkpoints").glob("ckpt-6.data-*"))
    with open(data, "r+b") as fh:
        fh.truncate(data.stat().st_size // 2)
    code, out, err, warnings = _resume(store_dir, run, capsys)
    assert code == 0, err
    assert "ckpt-4 at step 4" in out and "at step 8" in out
    assert len(warnings) == 1 and "skipped ckpt-6 (unreadable" in warnings[0], err
    assert _log_steps(run) == list(range(1, 9))
    assert loop._checkpoint_damage(run / "checkpoints/ckpt-6") is None  # re-saved when step 6 came again


def test_deleted_newest_checkpoint_falls_back_to_older(store_dir, run, capsys):
    for f in (run / "checkpoints").glob("ckpt-6.*"):
        f.unlink()
    code, out, err, warnings = _resume(store_dir, run, capsys, max_steps=5)
    assert code == 0, err
    assert "ckpt-4 at step 4" in out and "at step 5" in out
    assert len(warnings) == 1 and "ckpt-6 (its files are missing)" in warnings[0]
    assert _log_steps(run) == list(range(1, 6))


def test_missing_index_of_newest_falls_back(store_dir, run, capsys):
    (run / "checkpoints/ckpt-6.index").unlink()
    code, out, err, warnings = _resume(store_dir, run, capsys, max_steps=5)
    assert code == 0 and "ckpt-4 at step 4" in out
    assert len(warnings) == 1 and "ckpt-6 (no .index file)" in warnings[0]


def test_all_checkpoints_damaged_refuses_and_touches_nothing(store_dir, run, capsys):
    for data in (run / "checkpoints").glob("ckpt-*.data-*"):
        with open(data, "r+b") as fh:
            fh.truncate(3)
    (run / "checkpoints/checkpoint").write_text("garbage\n")
    before = _snapshot(run)
    code, out, err, warnings = _resume(store_dir, run, capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no intact checkpoint" in errors[0] and "--restart" in errors[0]
    assert "ckpt-6" in errors[0] and "ckpt-2" in errors[0]
    assert _snapshot(run) == before


def test_logged_run_without_checkpoints_is_not_restarted_from_zero(store_dir, run, capsys):
    shutil.rmtree(run / "checkpoints")
    before = _snapshot(run)
    code, out, err, _ = _resume(store_dir, run, capsys)
    assert code == 2 and "pass --restart" in err and "resumed" not in out
    assert _snapshot(run) == before


def test_restart_deletes_checkpoints_and_log_then_trains_from_zero(store_dir, run, capsys):
    """``restart=True`` (the trainers' ``--restart``) is the only way back to step 0."""
    store = open_patch_store(store_dir)
    recipe = MFFGANRecipe(batch_size=BATCH, epochs=50)
    config = loop.LoopConfig(run_dir=str(run), epochs=50, steps_per_epoch=steps_per_epoch(store, BATCH),
                             save_every=2, max_steps=2, progress=False, restart=True)
    result = loop.fit(MFFGANTraining(recipe), lambda e, s: patch_dataset(store, BATCH, e, False, 0, s), config, recipe)
    out = capsys.readouterr().out
    assert result.step == 2 and "restart: deleted 3 checkpoint(s) and 6 logged step(s)" in out
    assert "resumed" not in out
    assert _log_steps(run) == [1, 2]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-2.index"]


def test_restart_flag_on_the_command_line(store_dir, run, capsys):
    assert _train(store_dir, run, 2, "--restart") == 0
    out = capsys.readouterr().out
    assert "restart: deleted" in out and "resumed" not in out
    assert _log_steps(run) == [1, 2]


def test_stale_log_temp_file_is_removed_and_rows_survive(store_dir, run, capsys):
    (run / ".log.csv.4242.tmp").write_bytes(b"")  # a run SIGKILLed mid-flush
    (run / ".log.csv.x8k2_q.csv").write_bytes(b"step,g_loss\n1,")  # atomic_path's temp name
    code, out, err, _ = _resume(store_dir, run, capsys, max_steps=7)
    assert code == 0 and "at step 6" in out
    assert not list(run.glob(".log.csv.*"))
    assert _log_steps(run) == list(range(1, 8))


def test_log_write_leaves_no_temp_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "log.csv"
    path.write_text("step\n1\n")

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        loop._write_text_atomic(path, "step\n1\n2\n")
    assert path.read_text() == "step\n1\n" and sorted(os.listdir(tmp_path)) == ["log.csv"]


def test_at_least_two_checkpoints_are_kept(store_dir, tmp_path):
    store = open_patch_store(store_dir)
    recipe = MFFGANRecipe(batch_size=BATCH, epochs=50)
    config = loop.LoopConfig(run_dir=str(tmp_path / "k"), epochs=50, steps_per_epoch=steps_per_epoch(store, BATCH),
                             save_every=1, max_steps=3, progress=False, keep_checkpoints=1)
    loop.fit(MFFGANTraining(recipe), lambda e, s: patch_dataset(store, BATCH, e, False, 0, s), config, recipe)
    assert sorted(p.name for p in (tmp_path / "k/checkpoints").glob("*.index")) == ["ckpt-2.index", "ckpt-3.index"]
