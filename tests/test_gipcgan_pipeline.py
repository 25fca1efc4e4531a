"""GIPC-GAN end to end on tiny data: Eqs. 18–19 synthesis, prepare → train → fuse on the CLI, XLA step."""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fusion_tf.cli import main
from fusion_tf.core import color, ops
from fusion_tf.core.imageio import read_image
from fusion_tf.data import gipcgan as data
from fusion_tf.data.patches import open_patch_store
from fusion_tf.training.gipcgan import GIPCGANRecipe, GIPCGANTraining


def _texture(rng, h, w):
    from scipy.ndimage import gaussian_filter

    img = gaussian_filter(rng.uniform(0, 255, (h, w, 3)), (1.0, 1.0, 0)) * 1.5 - 60
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sharp(tmp_path_factory):
    """Three 100×100 colour images with 0/255 masks: 2 train (9 windows each at 80/10) + 1 test."""
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("sharp")
    (root / "img").mkdir()
    (root / "mask").mkdir()
    for i in range(3):
        Image.fromarray(_texture(rng, 100, 100)).save(root / "img" / f"s{i}.png")
        m = np.zeros((100, 100), np.uint8)
        m[10 + 10 * i : 70, 20:90] = 255
        Image.fromarray(m).save(root / "mask" / f"s{i}.png")
    return root


def test_synthesis_follows_eqs_18_19():
    rng = np.random.default_rng(0)
    img = _texture(rng, 40, 50)
    mask = np.zeros((40, 50), np.uint8)
    mask[5:25, 10:40] = 1
    near, far = data.synthesize_pair(img, mask, sigma=2.0)
    blurred = color.to_uint8(data.gaussian_blur(img, 2.0))
    inside = mask.astype(bool)
    np.testing.assert_array_equal(near[inside], img[inside])
    np.testing.assert_array_equal(near[~inside], blurred[~inside])
    np.testing.assert_array_equal(far[inside], blurred[inside])
    np.testing.assert_array_equal(far[~inside], img[~inside])
    # the NumPy blur is MATLAB imgaussfilt: 9×9 kernel for σ 2, replicate padding (= the TF op)
    ref = ops.filter2d(tf.constant(img[None].astype(np.float32)), ops.imgaussfilt_kernel(2.0), "replicate")
    np.testing.assert_allclose(data.gaussian_blur(img, 2.0), ref.numpy()[0], atol=1e-3)


def test_procedural_masks_are_seeded_blobs():
    a = data.procedural_mask(60, 80, data.name_seed(0, "x"))
    np.testing.assert_array_equal(a, data.procedural_mask(60, 80, data.name_seed(0, "x")))
    b = data.procedural_mask(60, 80, data.name_seed(0, "y"))
    c = data.procedural_mask(60, 80, data.name_seed(1, "x"))
    assert a.shape == (60, 80) and set(np.unique(a)) == {0, 1}
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    for m in (a, b, c):
        assert 0.2 <= m.mean() <= 0.8


def test_voc_maps_count_void_as_foreground(tmp_path):
    idx = np.array([[0, 5, 255], [0, 0, 15]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0] * 256)
    im.save(tmp_path / "m.png")
    np.testing.assert_array_equal(data.read_voc_mask(tmp_path / "m.png"), [[0, 1, 1], [0, 0, 1]])


def _log(run):
    with open(run / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_prepare_train_fuse(sharp, tmp_path, capsys):
    store, run, export = tmp_path / "s.h5", tmp_path / "run", tmp_path / "export"
    assert main(["prepare", "gipcgan", "--images", str(sharp / "img"), "--masks", str(sharp / "mask"),
                 "--out", str(store), "--export", str(export)]) == 0
    s = open_patch_store(store, sources=data.SOURCES)
    assert s.count == 18 and s.patch == 80
    import h5py

    with h5py.File(store) as h5:
        train, test = json.loads(h5.attrs["train"]), json.loads(h5.attrs["test"])
        assert len(train) == 2 and len(test) == 1 and h5.attrs["sigma"] == 2.0
    # the gt plane is the studio Y of the sharp image; near/far were synthesised in RGB
    name = train[0]
    rgb = read_image(sharp / "img" / f"{name}.png")
    np.testing.assert_array_equal(s.images["gt"][0], color.rgb_to_y_studio_matlab(rgb))
    near = read_image(export / "train" / "near" / f"{name}.png")
    np.testing.assert_array_equal(s.images["near"][0], color.rgb_to_y_studio_matlab(near))
    assert (export / "test" / "far" / f"{test[0]}.png").is_file()

    assert main(["train", "gipcgan", "--store", str(store), "--run-dir", str(run), "--batch-size", "2",
                 "--max-steps", "1", "--no-jit", "--quiet"]) == 0
    row = _log(run)[-1]
    for term in ("d_fake_int", "d_fake_grad", "d_real_int", "d_real_grad", "g_adv_int", "g_adv_grad", "l_int"):
        assert float(row[term]) > 0, term
    # linear decline to 0 over 9 steps/epoch × 10 epochs, read after the first G update
    np.testing.assert_allclose(float(row["lr"]), 1e-4 * (1 - 1 / 90), rtol=1e-5)
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["variant"] == "paper" and recipe["loss"]["lam"] == 9.3 and recipe["patch"] == 80
    assert recipe["d_steps"] == 2 and recipe["batch_size"] == 2

    pair = [str(export / "test" / k / f"{test[0]}.png") for k in ("near", "far")]
    out = tmp_path / "fused.png"
    assert main(["fuse", "--model", "gipcgan", "--weights", str(run), *pair, "-o", str(out)]) == 0
    from fusion_tf import registry

    fuser = registry.load_fuser("gipcgan", str(run / "generator.weights.h5"))
    expected = fuser.fuse([read_image(p) for p in pair]).fused
    assert expected.shape == (100, 100, 3)
    np.testing.assert_array_equal(read_image(out), expected)
    grey = [read_image(export / "train" / "mask" / f"{n}.png") for n in train]  # any grey images
    assert fuser.fuse([grey[0], grey[1], grey[0]]).fused.shape == (100, 100)


def test_compact_ablation_with_procedural_maps(sharp, tmp_path, capsys):
    """``train gipcgan-compact --without-gra``: the recipe drops λ2, λ4, λ6 (their terms' absence from
    the gradients is tested in test_gipcgan_objective).  ``--max-steps 0`` writes the recipe only."""
    store, run = tmp_path / "p.h5", tmp_path / "run"
    assert main(["prepare", "gipcgan-compact", "--images", str(sharp / "img"), "--train-count", "1",
                 "--out", str(store)]) == 0
    assert "maps: procedural" in capsys.readouterr().out
    assert main(["train", "gipcgan-compact", "--store", str(store), "--run-dir", str(run), "--batch-size", "3",
                 "--max-steps", "0", "--no-jit", "--quiet", "--without-gra"]) == 0
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["variant"] == "count_matched" and recipe["epochs"] == 10
    assert [recipe["loss"][f"lam{i}"] for i in range(1, 7)] == [0.1, 0, 0.1, 0, 0.1, 0]
    img = str(sharp / "img" / "s0.png")
    capsys.readouterr()
    assert main(["fuse", "--model", "gipcgan", "--weights", str(run), img, img, "-o", str(tmp_path / "f.png")]) == 2
    assert "--model gipcgan-compact" in capsys.readouterr().err
    assert main(["train", "gipcgan", "--store", str(store), "--run-dir", str(tmp_path / "r2"), "--max-steps", "0", "--batch-size", "3",
                 "--quiet", "--without-int"]) == 0
    recipe = json.loads((tmp_path / "r2" / "recipe.json").read_text())
    assert recipe["variant"] == "paper"
    assert [recipe["loss"][f"lam{i}"] for i in range(1, 7)] == [0, 1, 0, 1, 0, 1]


def test_bad_inputs_exit_2(sharp, tmp_path, capsys):
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "masks" / "s0.png")
    assert main(["prepare", "gipcgan", "--images", str(sharp / "img"), "--masks", str(tmp_path / "masks"),
                 "--out", str(tmp_path / "x.h5")]) == 2
    assert "no decision map" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    # a store without the all-in-focus plane (e.g. MFF-GAN's) is refused with one line
    from fusion_tf.data.patches import write_indexed_layout

    img = np.zeros((80, 80), np.uint8)
    write_indexed_layout(tmp_path / "pairs.h5", [(img, img)], patch=80)
    assert main(["train", "gipcgan", "--store", str(tmp_path / "pairs.h5"), "--run-dir", str(tmp_path / "r"),
                 "--no-jit", "--quiet"]) == 2
    assert "gt" in capsys.readouterr().err


def _toy_batch():
    rng = np.random.default_rng(5)
    gt = rng.uniform(-1, 1, (4, 32, 32, 1)).astype(np.float32)
    mask = np.zeros((4, 32, 32, 1), np.float32)
    mask[:, :, :16] = 1
    blur = ops.filter2d(tf.constant(gt), ops.imgaussfilt_kernel(2.0), "replicate").numpy()
    return {"near": tf.constant(mask * gt + (1 - mask) * blur), "far": tf.constant(mask * blur + (1 - mask) * gt),
            "gt": tf.constant(gt)}


def _lowers_content_loss(jit: bool):
    # compact variant and one D update per step keep tracing (and the XLA compile) short
    recipe = GIPCGANRecipe(variant="count_matched", patch=32, d_steps=1, learning_rate=1e-3, seed=2)
    method = GIPCGANTraining(recipe, total_steps=100)
    step = tf.function(method.iteration, jit_compile=jit, autograph=False)
    batch = _toy_batch()
    first = {k: float(v) for k, v in step(batch).items()}
    assert all(np.isfinite(v) for v in first.values())
    for _ in range(14):
        last = float(step(batch)["g_content"])
    assert last < 0.8 * first["g_content"]
    assert int(method.d_optimizer.iterations.numpy()) == 15 == int(method.g_optimizer.iterations.numpy())


def test_training_lowers_content_loss():
    _lowers_content_loss(jit=False)


@pytest.mark.slow
def test_xla_training_lowers_content_loss():
    """The train command compiles with XLA by default (≈45 s to compile on a loaded 2-core CPU)."""
    _lowers_content_loss(jit=True)
