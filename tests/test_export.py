"""SavedModel export: saved_model_cli (the TF1 loader TF Serving uses) on two odd sizes, parity with fuse.

Models without shipped weights are exported with weights made here (random, saved to .weights.h5):
the export must reproduce ``fuse`` with *whatever* weights, which random ones test as well as trained.
"""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf import registry
from fusion_tf.cli import main
from fusion_tf.core.imageio import read_image

SIZES = ((333, 517), (520, 520))
GACN_WEIGHTS = "reference/gacn/weights/GACN_state_dict_pytorch_layout.npz"
#: the ``saved_model_cli`` console script, run by the interpreter that runs the tests (no PATH lookup)
SAVED_MODEL_CLI = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


@pytest.fixture(scope="module")
def pair(shared):
    return [read_image(shared / f"data/lytro/pairs/lytro-05-{s}.jpg") for s in "AB"]


def _random_weights(model: str, folder) -> str:
    """Seeded random generator weights as .weights.h5 (He-scaled kernels: a fresh GIPC-GAN outputs
    ~1e-13).  MFIF-GAN's head is scaled ×30 so its focus map is decisive (unscaled, 6 % of the pixels
    lie within 1e-3 of the 0.5 threshold) and speckled, so SRR has thousands of regions to remove."""
    from fusion_tf.models import gipcgan, mfifgan

    if model == "mfifgan":
        g, gain = mfifgan.build_generator(), 1.0
    else:
        g, gain = gipcgan.build_generator("paper" if model == "gipcgan" else "count_matched"), 1.5
    rng = np.random.default_rng(11)
    for v in g.trainable_weights:
        if len(v.shape) > 1:
            v.assign(rng.normal(0.0, gain / np.sqrt(np.prod(v.shape[:-1])), v.shape).astype(np.float32))
        elif v.path.endswith("bias"):
            v.assign(rng.uniform(-0.05, 0.05, v.shape).astype(np.float32))
    if model == "mfifgan":
        g.conv6.kernel.assign(g.conv6.kernel * 30.0)
    path = folder / f"{model}.weights.h5"
    g.save_weights(str(path))
    return str(path)


def _weights(model, shared, tmp_path_factory):
    if model == "mffgan":
        return None  # the shipped checkpoint
    if model == "gacn":
        return str(shared / GACN_WEIGHTS)
    return _random_weights(model, tmp_path_factory.mktemp("weights"))


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


@pytest.mark.parametrize("model", ["mffgan", "gacn", *(pytest.param(m, marks=pytest.mark.slow)
                                                    for m in ("mfifgan", "gipcgan", "gipcgan-compact"))])
def test_exported_model_runs_in_saved_model_cli_and_matches_fuse(model, pair, shared, tmp_path, tmp_path_factory):
    """The issue's acceptance for every model (MFIF-GAN's 2.4 TFLOPs per 520² pair make it slow here)."""
    weights = _weights(model, shared, tmp_path_factory)
    saved = _exported(tmp_path_factory, model, weights)
    show = subprocess.run([*SAVED_MODEL_CLI, "show", "--dir", str(saved), "--all"], capture_output=True, text=True)
    assert "tensorflow/serving/predict" in show.stdout and "inputs['img_a']" in show.stdout
    assert "shape: (-1, -1, -1, -1)" in show.stdout
    fuser = registry.load_fuser(model, weights)
    for h, w in SIZES:
        a, b = (x[:h, :w] for x in pair)
        out = _cli_run(saved, a, b, tmp_path / f"{h}x{w}")
        result = fuser.fuse([a, b])
        assert out["fused"].shape == (1, h, w, 3) and out["fused"].dtype == np.uint8
        diff = np.abs(out["fused"][0].astype(int) - result.fused.astype(int))
        assert diff.max() <= 1, (h, w, diff.max(), int((diff > 1).sum()))
        if registry.get(model).decision_map:
            assert out["dm_final"].shape == (1, h, w, 1)
        if model == "mfifgan":  # the in-graph SRR gives the very map of the SciPy one
            assert np.array_equal(out["dm_final"][0, ..., 0], result.decision_map)
    # grey sources through the same signature, loaded the TF2 way
    grey = [x[:64, :72].mean(axis=-1).astype(np.uint8) for x in pair]
    fn = tf.saved_model.load(str(saved)).signatures["serving_default"]
    got = fn(img_a=tf.constant(grey[0][None, ..., None]), img_b=tf.constant(grey[1][None, ..., None]))["fused"]
    assert np.abs(got.numpy()[0, ..., 0].astype(int) - fuser.fuse(grey).fused.astype(int)).max() <= 1


def _mfifgan_map(fuser, a, b):
    """MFIF-GAN's map after the size fix, before thresholding (what ``dm_initial`` returns)."""
    from fusion_tf.inference.mfifgan import fix_size

    return fix_size(fuser.focus_map(a, b), a.shape[0], a.shape[1])


def test_mfifgan_export_small_odd_size_matches_fuse(pair, tmp_path, tmp_path_factory):
    """Default-suite MFIF-GAN check on a small pair: 45×63 makes the generator's map 48×64, so the
    size fix (8-bit truncation, half-to-even centre crop) runs in the graph too; then SRR in-graph."""
    weights = _random_weights("mfifgan", tmp_path_factory.mktemp("weights"))
    saved = _exported(tmp_path_factory, "mfifgan", weights)
    fuser = registry.load_fuser("mfifgan", weights)
    a, b = (x[200:245, 300:363] for x in pair)
    result = fuser.fuse([a, b])
    assert 0.05 < result.decision_map.mean() < 0.95  # both sources contribute
    out = _cli_run(saved, a, b, tmp_path / "colour")
    assert np.array_equal(out["fused"][0], result.fused)
    assert np.array_equal(out["dm_final"][0, ..., 0], result.decision_map)
    assert np.abs(out["dm_initial"][0, ..., 0] - _mfifgan_map(fuser, a, b)).max() <= 1e-6
    grey = [x.mean(axis=-1).astype(np.uint8) for x in (a, b)]
    fn = tf.saved_model.load(str(saved)).signatures["serving_default"]
    got = fn(img_a=tf.constant(np.stack([grey[0], grey[1]])[..., None]),  # a batch of two pairs
             img_b=tf.constant(np.stack([grey[1], grey[0]])[..., None]))
    for i, (x, y) in enumerate((grey, grey[::-1])):
        r = fuser.fuse([x, y])
        assert np.array_equal(got["fused"].numpy()[i, ..., 0], r.fused)
        assert np.array_equal(got["dm_final"].numpy()[i, ..., 0], r.decision_map)


def test_export_refuses_existing_folder_and_unsupported_model(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["export", "--model", "mffgan", "-o", str(tmp_path / "taken")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["export", "--model", "nosuch", "--weights", "x.npz", "-o", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()
