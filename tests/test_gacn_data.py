"""GACN data: pair synthesis parity, augmentation, COCO/folder sources and the HDF5 store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.core import ops
from fusion_tf.data import gacn as D
from fusion_tf.data import sources
from fusion_tf.errors import InputImageError, StoreError

from shared_data import SHARED, need
DATAGEN_REF = SHARED / "reference" / "gacn" / "intermediates" / "datagen_reference.npz"


# ------------------------------------------------------------------------------------------------
# Synthesis
# ------------------------------------------------------------------------------------------------
def test_blur_pair_matches_original():
    need(DATAGEN_REF)
    ref = np.load(DATAGEN_REF)
    t = lambda k: tf.constant(ref[k].transpose(0, 2, 3, 1))  # noqa: E731
    a, b, soft = D.blur_pair(t("img"), t("mask"), int(ref["filter_size"]))
    np.testing.assert_allclose(a.numpy(), t("input_foreground_blurred").numpy(), atol=1e-5)
    np.testing.assert_allclose(b.numpy(), t("input_background_blurred").numpy(), atol=1e-5)
    np.testing.assert_allclose(soft.numpy(), t("mask_soft").numpy(), atol=1e-5)


@pytest.mark.parametrize("radius", [1, 7])
def test_padded_blur_kernels_equal_the_plain_kernel(radius):
    x = tf.random.stateless_uniform([1, 20, 17, 1], [radius, 0])
    mask = tf.zeros_like(x)
    _, b, _ = D.blur_pair(x, mask, radius)  # mask 0 → B is the blurred image
    want = ops.filter2d(x, ops.gaussian_kernel(radius, 2.0).astype(np.float32), "zero")
    np.testing.assert_allclose(b.numpy(), want.numpy(), atol=1e-6)


def test_offset_loses_last_row_and_column_even_without_moving():
    x = tf.ones([2, 6, 5, 1])
    out = D.shift_with_lost_border(x, tf.constant([0, 2]), tf.constant([0, -1])).numpy()[..., 0]
    assert np.all(out[0, -1] == 0) and np.all(out[0, :, -1] == 0) and np.all(out[0, :-1, :-1] == 1)
    # down by 2, left by 1: two empty top rows; the vacated right column coincides with the lost one
    assert np.all(out[1, :2] == 0) and np.all(out[1, -1] == 0) and np.all(out[1, :, -1] == 0)
    assert np.all(out[1, 2:-1, :-1] == 1)


def test_noise_field_is_shared():
    rng = tf.random.Generator.from_seed(3)
    a = tf.random.stateless_uniform([2, 8, 8, 1], [1, 1])
    b = tf.random.stateless_uniform([2, 8, 8, 1], [2, 2])
    na, nb = D.add_shared_noise(a, b, rng)
    np.testing.assert_allclose((na - nb).numpy(), 0.95 * (a - b).numpy(), atol=1e-6)
    assert not np.allclose(na.numpy(), 0.95 * a.numpy())


def test_synthesize_batch_in_tf_function_draws_fresh_values():
    rng = tf.random.Generator.from_seed(7)
    image = tf.random.stateless_uniform([2, 32, 32, 1], [4, 4])
    mask = tf.cast(tf.random.stateless_uniform([2, 32, 32, 1], [5, 5]) > 0.5, tf.float32)
    step = tf.function(lambda im, m: D.synthesize_batch(im, m, rng))
    first = step(image, mask)
    second = step(image, mask)
    assert not np.allclose(first[0].numpy(), second[0].numpy())
    for img1, img2, gt in (first, second):
        assert img1.shape == image.shape
        g = gt.numpy()
        assert np.array_equal(g, mask.numpy()) or np.array_equal(g, 1 - mask.numpy())


def test_validation_radii_are_the_legacy_numpy_draws():
    assert D.validation_radii()[:10].tolist() == [6, 4, 5, 1, 2, 4, 6, 1, 1, 2]
    assert len(D.validation_radii()) == 109


def test_augment_train_crops_flips_rotates_and_keeps_alignment():
    image = tf.random.stateless_uniform([256, 256], [9, 9])
    mask = tf.cast(image > 0.5, tf.float32) * 0.8 + 0.1  # values 0.1 / 0.9 → thresholded to 0 / 1
    img, msk = D.augment_train(image, mask, tf.constant([3, 4], tf.int64))
    assert img.shape == (156, 156, 1) and msk.shape == (156, 156, 1)
    m = D.threshold_mask(msk).numpy()
    assert set(np.unique(m)) <= {0.0, 1.0}
    # nearest rotation: every non-fill pixel is an input value, mask still aligned with image
    inside = img.numpy() > 0
    assert np.array_equal(m[inside] == 1.0, img.numpy()[inside] > 0.5)
    again = D.augment_train(image, mask, tf.constant([3, 4], tf.int64))[0]
    np.testing.assert_array_equal(img.numpy(), again.numpy())


def test_threshold_keeps_exact_half():
    np.testing.assert_array_equal(D.threshold_mask(tf.constant([0.2, 0.5, 0.7])).numpy(), [0.0, 0.5, 1.0])


# ------------------------------------------------------------------------------------------------
# COCO fixture in the real annotation format
# ------------------------------------------------------------------------------------------------
def _rle_string(counts: list[int]) -> str:
    """COCO's compressed RLE encoder (what pycocotools writes), for building the fixture."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Column-major run lengths starting with a (possibly empty) run of zeros, as COCO stores them."""
    flat = mask.reshape(-1, order="F")
    edges = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(edges).tolist()
    return ([0] + runs) if flat[0] else runs


def _rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    (root / "annotations").mkdir()
    (root / "train2014").mkdir()
    rng = np.random.default_rng(0)
    h, w = 240, 320
    images, anns = [], []
    masks = {
        1: _rect(h, w, 40, 200, 60, 260),     # polygon, 32,000 px
        2: _rect(h, w, 20, 180, 20, 180),     # compressed RLE string, 25,600 px
        3: _rect(h, w, 0, 240, 100, 300),     # uncompressed RLE (crowd style), 48,000 px
        4: _rect(h, w, 10, 100, 10, 100),     # too small (8,100 px) → excluded
        5: _rect(h, w, 40, 200, 60, 260),     # two annotations → excluded
    }
    for image_id, mask in masks.items():
        name = f"COCO_train2014_{image_id:012d}.jpg"
        cv2.imwrite(str(root / "train2014" / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
        area = float(mask.sum())
        if image_id in (1, 4, 5):
            seg = [[60.0, 40.0, 260.0, 40.0, 260.0, 200.0, 60.0, 200.0]] if image_id != 4 else [[10.0, 10.0, 100.0, 10.0, 100.0, 100.0, 10.0, 100.0]]
        elif image_id == 2:
            seg = {"size": [h, w], "counts": _rle_string(_rle_counts(mask))}
        else:
            seg = {"size": [h, w], "counts": _rle_counts(mask)}
        anns.append({"id": 100 + image_id, "image_id": image_id, "category_id": 1, "segmentation": seg,
                     "area": area, "bbox": [0, 0, 1, 1], "iscrowd": int(image_id == 3)})
    anns.append({"id": 999, "image_id": 5, "category_id": 2, "segmentation": [[0, 0, 5, 0, 5, 5]],
                 "area": 12.5, "bbox": [0, 0, 5, 5], "iscrowd": 0})
    data = {"info": {}, "licenses": [], "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (root / "annotations" / "instances_train2014.json").write_text(json.dumps(data))
    return root


def test_rle_string_decoding_roundtrip():
    mask = (np.random.default_rng(1).random((37, 23)) > 0.6).astype(np.uint8)
    counts = _rle_counts(mask)
    assert sources.rle_counts_from_string(_rle_string(counts)) == counts
    np.testing.assert_array_equal(sources.decode_rle({"size": [37, 23], "counts": _rle_string(counts)}), mask)
    np.testing.assert_array_equal(sources.decode_rle({"size": [37, 23], "counts": counts}), mask)
    with pytest.raises(InputImageError):
        sources.decode_rle({"size": [37, 24], "counts": counts})


def test_coco_selection_and_decoding(coco_root):
    samples = list(sources.coco_single_object_samples(coco_root))
    assert [s.sample_id for s in samples] == [f"instances_train2014:{i}" for i in (1, 2, 3)]
    areas = [int(s.mask.sum()) for s in samples]
    assert areas[0] == pytest.approx(32_000, rel=0.02)  # polygon (edge convention ±1 px)
    assert areas[1:] == [25_600, 48_000]
    assert samples[2].mask[0, 100] == 1 and samples[2].mask[0, 99] == 0


def _prepare_args(**kw):
    base = dict(coco=None, images=None, masks=None, output=None, seed=1, min_area=20_000, max_area=170_000, limit=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_prepare_coco_store(coco_root, tmp_path, capsys):
    out = tmp_path / "gacn.h5"
    assert D.prepare(_prepare_args(coco=str(coco_root), output=str(out))) == 0
    assert "3 samples (2 train / 1 val)" in capsys.readouterr().out
    with h5py.File(out) as f:
        assert f["image"].shape == (3, 256, 256) and f["image"].dtype == np.uint8
        assert f["mask"].shape == (3, 256, 256) and f["mask"].dtype == np.uint8
        assert json.loads(f.attrs["source"])["kind"] == "coco"
        assert [s.decode() if isinstance(s, bytes) else s for s in f["id"][()]][0] == "instances_train2014:1"
        grey = cv2.imread(str(coco_root / "train2014" / "COCO_train2014_000000000001.jpg"), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(f["image"][0], D.resize_to_store(grey))
        assert f["mask"][2][0, 0] == 0 and f["mask"][2][128, 200] == 255
    store = D.open_store(out)
    assert len(store.train) == 2 and len(store.val) == 1
    batch = next(iter(D.train_dataset(store, batch_size=2, epoch=0, seed=1)))
    assert batch[0].shape == (2, 156, 156, 1) and batch[1].shape == (2, 156, 156, 1)
    image, mask, radius = next(iter(D.val_dataset(store, batch_size=2)))
    assert image.shape == (1, 256, 256, 1) and int(radius) == 6
    again = next(iter(D.train_dataset(store, batch_size=2, epoch=0, seed=1)))
    np.testing.assert_array_equal(batch[0].numpy(), again[0].numpy())
    other = next(iter(D.train_dataset(store, batch_size=2, epoch=1, seed=1)))
    assert not np.array_equal(batch[0].numpy(), other[0].numpy())


def test_prepare_from_folder_and_errors(tmp_path):
    imgs, msks = tmp_path / "images", tmp_path / "masks"
    imgs.mkdir()
    msks.mkdir()
    for i in range(3):
        cv2.imwrite(str(imgs / f"img_{i}.jpg"), np.full((64, 80, 3), 40 * i, np.uint8))
        cv2.imwrite(str(msks / f"img_{i}.png"), _rect(64, 80, 10, 50, 10, 60) * 255)
    out = tmp_path / "folder.h5"
    D.prepare(_prepare_args(images=str(imgs), masks=str(msks), output=str(out)))
    assert len(D.open_store(out).train) == 2
    cv2.imwrite(str(imgs / "img_9.jpg"), np.zeros((64, 80, 3), np.uint8))
    with pytest.raises(InputImageError, match="no mask for img_9.jpg"):
        D.prepare(_prepare_args(images=str(imgs), masks=str(msks), output=str(tmp_path / "x.h5")))
    with pytest.raises(InputImageError, match="--masks"):
        D.prepare(_prepare_args(images=str(imgs), output=str(tmp_path / "x.h5")))
    with pytest.raises(InputImageError, match="instances"):
        D.prepare(_prepare_args(coco=str(tmp_path), output=str(tmp_path / "x.h5")))


def test_open_store_errors(tmp_path):
    with pytest.raises(StoreError, match="not found"):
        D.open_store(tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["data"] = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(StoreError, match="missing datasets"):
        D.open_store(bad)
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as f:
        f["image"] = np.zeros((2, 256, 256), np.float32)
        f["mask"] = np.zeros((2, 256, 256), np.uint8)
        f["split"] = np.zeros(2, np.uint8)
    with pytest.raises(StoreError, match="uint8"):
        D.open_store(wrong)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(StoreError):
        D.open_store(text)
