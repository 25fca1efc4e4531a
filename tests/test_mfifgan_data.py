"""MFIF-GAN data: VOC palette PNGs (void = foreground), α-matte synthesis, the store and tf.data."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

from fusion_tf.data import mfifgan as data
from fusion_tf.data.sources import voc_samples
from fusion_tf.errors import InputImageError


def _voc(root, rng, ids=("2007_000032", "2007_000039"), size=(60, 80)):
    """A tiny VOC 2012 tree: JPEG images and palette class-index PNGs (object 15, void band 255)."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    palette = [0, 0, 0, 128, 0, 0] + [7] * (3 * 254)
    for k, name in enumerate(ids):
        h, w = size
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        idx = np.zeros((h, w), np.uint8)
        idx[15:45, 20 + k : 60] = 255  # void band …
        idx[17:43, 22 + k : 58] = 15  # … around the object
        png = Image.fromarray(idx, mode="P")
        png.putpalette(palette)
        png.save(root / "SegmentationClass" / f"{name}.png")
    return root


def test_voc_reader_counts_void_as_foreground(tmp_path, rng):
    root = _voc(tmp_path / "VOCdevkit" / "VOC2012", rng)
    samples = list(voc_samples(tmp_path))  # finds VOCdevkit/VOC2012
    assert [s.sample_id for s in samples] == ["2007_000032", "2007_000039"]
    mask = samples[0].mask
    assert mask.dtype == np.uint8 and mask[15, 20] == 1 and mask[30, 30] == 1 and mask[0, 0] == 0
    assert mask.sum() == 30 * 40
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(root / "SegmentationClass" / "2007_000032.png")
    with pytest.raises(InputImageError, match="palette"):
        list(voc_samples(root))


def test_imgaussfilt_is_5x5_replicate(rng):
    x = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    k = np.exp(-(np.arange(-2, 3)[:, None] ** 2 + np.arange(-2, 3)[None, :] ** 2) / 2.0)
    k /= k.sum()
    xp = np.pad(x.astype(np.float64), 2, mode="edge")
    ref = np.array([[np.sum(xp[i : i + 5, j : j + 5] * k) for j in range(11)] for i in range(9)])
    np.testing.assert_allclose(data.gaussian_blur(x), ref, atol=1e-9)
    np.testing.assert_array_equal(data.imgaussfilt_uint8(x), np.floor(ref + 0.5).astype(np.uint8))


def test_synthesis_formulas(rng):
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    mask = np.zeros((30, 40), np.uint8)
    mask[8:22, 10:30] = 1
    a, b = data.synthesize_pair(img, mask, "code")
    i = img / 255.0
    bi = data.imgaussfilt_uint8(img) / 255.0
    bm = data.imgaussfilt_uint8(mask * 255)[..., None] / 255.0
    m = mask[..., None].astype(float)
    np.testing.assert_array_equal(a, np.floor(255 * (i * m + bi * (1 - m)) + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(b, np.floor(255 * (bi * bm + i * (1 - bm)) + 0.5).astype(np.uint8))
    # defocus spread: B's blur reaches outside the object; conventional B stops at the edge
    a2, b2 = data.synthesize_pair(img, mask, "conventional")
    np.testing.assert_array_equal(a2, a)
    np.testing.assert_array_equal(b2[7, 10:30], img[7, 10:30])  # row just outside: sharp
    assert np.any(b[7, 10:30] != img[7, 10:30])
    np.testing.assert_array_equal(b[15, 20], data.imgaussfilt_uint8(img)[15, 20])  # deep inside: blurred
    pa, pb = data.synthesize_pair(img, mask, "paper")
    assert pa.shape == pb.shape == img.shape


def test_center_crop_like_torchvision():
    x = np.arange(7 * 9).reshape(7, 9)
    np.testing.assert_array_equal(data.center_crop(x, 4), x[2:6, 2:6])  # (7−4)/2 = 1.5 → 2, (9−4)/2 = 2.5 → 2
    padded = data.center_crop(x, 10)
    assert padded.shape == (10, 10) and padded[0].sum() == 0


def test_prepare_voc_and_folder_then_dataset(tmp_path, rng):
    from fusion_tf.cli import main

    _voc(tmp_path / "voc", rng)
    out = tmp_path / "voc.h5"
    assert main(["prepare", "mfifgan", "--voc", str(tmp_path / "voc"), "-o", str(out), "--crop", "48", "--size", "32"]) == 0
    store = data.open_store(out)
    assert store.count == 2 and store.size == 32
    with h5py.File(out, "r") as f:
        assert f["a"].shape == (2, 32, 32, 3) and f["map"].dtype == np.uint8
        assert list(f["id"].asstr()[()]) == ["2007_000032", "2007_000039"]
        assert '"synthesis": "code"' in f.attrs["recipe"]
    batches = list(data.train_dataset(store, 2, epoch=0, seed=0))
    assert len(batches) == 1 and batches[0]["a"].shape == (2, 32, 32, 3) and batches[0]["map"].shape == (2, 32, 32, 1)
    m = batches[0]["map"].numpy()
    assert m.min() == -1.0 and m.max() == 1.0  # code range
    paper = next(iter(data.train_dataset(store, 2, gt_range="paper")))["map"].numpy()
    assert paper.min() == 0.0 and paper.max() == 1.0
    assert -1.0 <= batches[0]["a"].numpy().min() and batches[0]["b"].numpy().max() <= 1.0

    (tmp_path / "imgs").mkdir()
    (tmp_path / "masks").mkdir()
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"p{k}.png")
        mk = np.zeros((40, 40), np.uint8)
        mk[10:30, 5:25 + k] = 255
        Image.fromarray(mk).save(tmp_path / "masks" / f"p{k}.png")
    out2 = tmp_path / "folder.h5"
    assert main(["prepare", "mfifgan", "--images", str(tmp_path / "imgs"), "--masks", str(tmp_path / "masks"),
                 "-o", str(out2), "--crop", "32", "--size", "32", "--synthesis", "conventional", "--no-jpeg"]) == 0
    store2 = data.open_store(out2)
    assert store2.count == 3 and data.steps_per_epoch(store2, 2) == 2  # last batch of 1 kept
    assert [b["a"].shape[0] for b in data.train_dataset(store2, 2)] == [2, 1]
