"""The ``fusion-tf`` command line: the user contract, including bad input (exit 2, no partial output)."""

import h5py
import numpy as np
import pytest
from PIL import Image

from fusion_tf.cli import main
from fusion_tf.core.imageio import read_image

LYTRO_TF1 = "reference/mff_gan/checkpoint/Lytro_model/CGAN.model-19"


def _save(path, arr):
    Image.fromarray(arr).save(path)
    return str(path)


@pytest.fixture
def small_pair(tmp_path, shared):
    a = read_image(shared / "data/lytro/pairs/lytro-01-A.jpg")[200:264, 150:230]
    b = read_image(shared / "data/lytro/pairs/lytro-01-B.jpg")[200:264, 150:230]
    return _save(tmp_path / "a.png", a), _save(tmp_path / "b.png", b)


def test_models_lists_parameter_counts(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "40,033" in out and "389,761" in out


def test_fuse_with_original_checkpoint_reproduces_raw_output(tmp_path, shared, capsys):
    ref = shared / "reference/mff_gan"
    out, raw = tmp_path / "f.png", tmp_path / "raw.npy"
    code = main(["fuse", "--model", "mffgan", "--weights", str(shared / LYTRO_TF1),
                 str(ref / "inputs/near/2.jpg"), str(ref / "inputs/far/2.jpg"), "-o", str(out), "--save-raw", str(raw)])
    assert code == 0
    expected = np.load(ref / "expected/Lytro_model_fused_tanh.npz")["fused_tanh_2"]
    got = np.load(raw)
    assert got.dtype == np.float32 and got.shape == (520, 520)
    assert np.abs(got - expected).max() <= 1e-5
    # plain output = round(y·127.5 + 127.5), as the spec's *_plain.png
    plain = read_image(ref / "expected/Lytro_model_2_plain.png")
    assert np.abs(read_image(out).astype(int) - plain.astype(int)).max() <= 1


def test_fuse_colour_and_three_images(tmp_path, small_pair, shared):
    out = tmp_path / "c.png"
    assert main(["fuse", "--weights", str(shared / LYTRO_TF1), *small_pair, "-o", str(out)]) == 0
    fused = read_image(out)
    assert fused.shape == (64, 80, 3)
    out3, raw3 = tmp_path / "c3.png", tmp_path / "r3.npy"
    assert main(["fuse", "--weights", str(shared / LYTRO_TF1), *small_pair, small_pair[0], "-o", str(out3),
                 "--save-raw", str(raw3)]) == 0
    # serial rule: ((a, b) → f) then (f, a); the raw output is that of the last pair
    from fusion_tf import registry

    fuser = registry.load_fuser("mffgan", str(shared / LYTRO_TF1))
    f, _ = fuser.fuse_pair(read_image(small_pair[0]), read_image(small_pair[1]))
    f2, raw = fuser.fuse_pair(f, read_image(small_pair[0]))
    np.testing.assert_array_equal(read_image(out3), f2)
    np.testing.assert_allclose(np.load(raw3), raw, atol=1e-6)


def test_faithful_output_mode_matches_original_bytescaled_file(tmp_path, shared):
    ref = shared / "reference/mff_gan"
    out = tmp_path / "faithful.png"
    assert main(["fuse", "--weights", str(shared / LYTRO_TF1), "--output-mode", "faithful",
                 str(ref / "inputs/near/1.jpg"), str(ref / "inputs/far/1.jpg"), "-o", str(out)]) == 0
    original = read_image(ref / "expected/Lytro_model_1_bytescaled_q75.jpg", "grey").astype(int)
    ours = read_image(out).astype(int)
    assert ours.min() == 0 and ours.max() >= 250  # byte-scaled: stretched to the full range
    assert np.abs(ours - original).mean() < 0.5  # same JPEG q75 encoder settings; decoder rounding only


def _assert_fails(capsys, argv, message, tmp_path):
    before = set(tmp_path.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert set(tmp_path.rglob("*")) == before  # nothing written


def test_bad_inputs_exit_2_without_output(tmp_path, small_pair, shared, capsys):
    out = str(tmp_path / "out.png")
    w = ["--weights", str(shared / LYTRO_TF1)]
    other = _save(tmp_path / "other.png", np.zeros((30, 30), np.uint8))
    bogus = tmp_path / "bogus.jpg"
    bogus.write_text("not an image")
    _assert_fails(capsys, ["fuse", *w, small_pair[0], other, "-o", out], "size mismatch", tmp_path)
    _assert_fails(capsys, ["fuse", *w, small_pair[0], str(tmp_path / "missing.png"), "-o", out], "not found", tmp_path)
    _assert_fails(capsys, ["fuse", *w, small_pair[0], str(bogus), "-o", out], "cannot read image", tmp_path)
    _assert_fails(capsys, ["fuse", *w, small_pair[0], "-o", out], "at least 2", tmp_path)
    _assert_fails(capsys, ["fuse", *w, *small_pair, "-o", str(tmp_path / "out.xyz")], "use one of", tmp_path)
    _assert_fails(capsys, ["fuse", "--weights", str(tmp_path / "nope.weights.h5"), *small_pair, "-o", out],
                  "not found", tmp_path)
    _assert_fails(capsys, ["fuse", *w, "--save-map", str(tmp_path / "m.png"), *small_pair, "-o", out],
                  "no decision map", tmp_path)


def test_weights_of_wrong_model_are_refused(tmp_path, small_pair, capsys):
    import keras

    wrong = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    path = tmp_path / "wrong.weights.h5"
    wrong.save_weights(str(path))
    _assert_fails(capsys, ["fuse", "--weights", str(path), *small_pair, "-o", str(tmp_path / "o.png")],
                  "does not hold mffgan weights", tmp_path)


def test_prepare_and_train_bad_store(tmp_path, capsys, shared):
    bad = tmp_path / "bad"
    (bad / "Train_near").mkdir(parents=True)
    with h5py.File(bad / "Train_near/train.h5", "w") as h5:
        h5["data"] = np.zeros((4, 60, 60, 1))
    _assert_fails(capsys, ["train", "mffgan", "--store", str(bad), "--run-dir", str(tmp_path / "run")],
                  "missing Train_far", tmp_path)
    _assert_fails(capsys, ["prepare", "mffgan", "--pairs", str(tmp_path / "none"), "--out", str(tmp_path / "s")],
                  "not a folder", tmp_path)


def test_prepare_from_pairs_folder(tmp_path, shared, capsys):
    src = tmp_path / "pairs"
    src.mkdir()
    for side in "AB":
        img = read_image(shared / f"data/lytro/pairs/lytro-02-{side}.jpg")[:80, :100]
        _save(src / f"scene-{side}.png", img)
    assert main(["prepare", "mffgan", "--pairs", str(src), "--out", str(tmp_path / "store")]) == 0
    with h5py.File(tmp_path / "store/Train_far/train.h5") as h5:
        assert h5["data"].shape == (3 * 5, 60, 60, 1) and h5["data"].dtype == np.uint8


def test_quick_start_fuses_bundled_sample_with_shipped_weights(tmp_path, capsys):
    from fusion_tf import registry
    from fusion_tf.paths import SAMPLES_DIR

    assert "mffgan" in registry.available_models()
    out = tmp_path / "fused.png"
    assert main(["fuse", str(SAMPLES_DIR / "lytro-01-A.jpg"), str(SAMPLES_DIR / "lytro-01-B.jpg"), "-o", str(out)]) == 0
    fused = read_image(out).astype(float)
    for side in "AB":
        src = read_image(SAMPLES_DIR / f"lytro-01-{side}.jpg").astype(float)
        assert fused.shape == src.shape
        assert 0.5 < np.abs(fused - src).mean() < 25  # close to each source, a copy of neither


def test_gacn_stack_streams_through_cli(tmp_path, shared):
    """Three frames via the CLI (streamed) equal the in-memory calibration; the map is saved too."""
    paths = []
    for i in (1, 2, 3):
        frame = read_image(shared / f"data/stack_v4/V00{i}.jpg")[500:564, 700:780]
        paths.append(_save(tmp_path / f"f{i}.png", frame))
    weights = str(shared / "reference/gacn/weights/GACN_state_dict_pytorch_layout.npz")
    out, dmap = tmp_path / "s.png", tmp_path / "m.png"
    assert main(["fuse", "--model", "gacn", "--weights", weights, "--multi", "calibration", *paths,
                 "-o", str(out), "--save-map", str(dmap)]) == 0
    from fusion_tf import registry

    direct = registry.load_fuser("gacn", weights).fuse([read_image(p) for p in paths], multi="calibration")
    np.testing.assert_array_equal(read_image(out), direct.fused)
    assert read_image(dmap).shape == (64, 80)
