"""SavedModel export: saved_model_cli (the TF1 loader TF Serving uses) on two odd sizes, parity with fuse."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf import registry
from fusion_tf.cli import main
from fusion_tf.core.imageio import read_image

SIZES = ((333, 517), (520, 520))
#: the ``saved_model_cli`` console script, run by the interpreter that runs the tests (no PATH lookup)
SAVED_MODEL_CLI = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


@pytest.fixture(scope="module")
def pair(shared):
    return [read_image(shared / f"data/lytro/pairs/lytro-05-{s}.jpg") for s in "AB"]


def _exported(tmp_path_factory, model, weights):
    out = tmp_path_factory.mktemp("serving") / model / "1"
    assert main(["export", "--model", model, *(["--weights", str(weights)] if weights else []), "-o", str(out)]) == 0
    assert (out / "saved_model.pb").is_file() and (out / "variables").is_dir()
    return out


def _cli_run(saved, a, b, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    np.save(tmp_path / "a.npy", a[None])
    np.save(tmp_path / "b.npy", b[None])
    proc = subprocess.run(
        [*SAVED_MODEL_CLI, "run", "--dir", str(saved), "--tag_set", "serve", "--signature_def", "serving_default",
         "--inputs", f"img_a={tmp_path / 'a.npy'};img_b={tmp_path / 'b.npy'}", "--outdir", str(tmp_path / "out"),
         "--overwrite"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {p.stem: np.load(p) for p in (tmp_path / "out").glob("*.npy")}


@pytest.mark.parametrize("model", ["mffgan", "gacn"])
def test_exported_model_runs_in_saved_model_cli_and_matches_fuse(model, pair, shared, tmp_path, tmp_path_factory):
    weights = shared / "reference/gacn/weights/GACN_state_dict_pytorch_layout.npz" if model == "gacn" else None
    saved = _exported(tmp_path_factory, model, weights)
    show = subprocess.run([*SAVED_MODEL_CLI, "show", "--dir", str(saved), "--all"], capture_output=True, text=True)
    assert "tensorflow/serving/predict" in show.stdout and "inputs['img_a']" in show.stdout
    assert "shape: (-1, -1, -1, -1)" in show.stdout
    fuser = registry.load_fuser(model, str(weights) if weights else None)
    for h, w in SIZES:
        a, b = (x[:h, :w] for x in pair)
        out = _cli_run(saved, a, b, tmp_path / f"{h}x{w}")
        expected = fuser.fuse([a, b]).fused
        assert out["fused"].shape == (1, h, w, 3) and out["fused"].dtype == np.uint8
        diff = np.abs(out["fused"][0].astype(int) - expected.astype(int))
        assert diff.max() <= 1, (h, w, diff.max(), int((diff > 1).sum()))
        if model == "gacn":
            assert out["dm_final"].shape == (1, h, w, 1)
    # grey sources through the same signature, loaded the TF2 way
    grey = [x[:64, :72].mean(axis=-1).astype(np.uint8) for x in pair]
    fn = tf.saved_model.load(str(saved)).signatures["serving_default"]
    got = fn(img_a=tf.constant(grey[0][None, ..., None]), img_b=tf.constant(grey[1][None, ..., None]))["fused"]
    assert np.abs(got.numpy()[0, ..., 0].astype(int) - fuser.fuse(grey).fused.astype(int)).max() <= 1


def test_export_refuses_existing_folder_and_unsupported_model(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["export", "--model", "mffgan", "-o", str(tmp_path / "taken")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["export", "--model", "mfifgan", "--weights", "x.npz", "-o", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()
