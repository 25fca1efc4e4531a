"""The substitute training source: all-in-focus images + masks from pairs fused by released GACN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fusion_tf.core.imageio import read_image, write_image
from fusion_tf.data import all_in_focus
from fusion_tf.errors import InputImageError


def test_mixed_crops_keep_only_windows_with_both_classes():
    mask = np.zeros((300, 400), np.uint8)
    mask[:, :100] = 1  # left quarter is class 1
    image = np.zeros((300, 400, 3), np.uint8)
    windows = all_in_focus.mixed_crops(image, mask, 128, 64, 0.15)
    assert windows, "some windows straddle the boundary"
    for y, x in windows:
        frac = mask[y:y + 128, x:x + 128].mean()
        assert 0.15 <= frac <= 0.85
    # the last row/column of windows is flush with the border
    assert max(y for y, _ in windows) == 300 - 128
    # a window entirely in one class is never kept
    assert (0, 256) not in windows


def test_build_refuses_evaluation_images(tmp_path):
    src = tmp_path / "pairs"
    img = np.zeros((16, 16), np.uint8)
    write_image(src / "lytro-03-A.jpg", img)
    write_image(src / "lytro-03-B.jpg", img)
    with pytest.raises(InputImageError, match="evaluation images"):
        all_in_focus.build(src, tmp_path / "out", "unused.npz", progress=False)
    assert not (tmp_path / "out").exists()


def test_build_and_crop_on_a_real_pair(shared, tmp_path):
    """One MFI-WHU pair (downsized): fused image = GACN's fusion, mask = its decision map ≥ ½."""
    from PIL import Image

    from fusion_tf import registry

    weights = shared / "reference/gacn/weights/GACN_state_dict_pytorch_layout.npz"
    src = tmp_path / "pairs"
    src.mkdir()
    pair = []
    for s in "AB":
        with Image.open(shared / f"data/mfi_whu_30/MFI-WHU_01_{s}.jpg") as im:
            small = np.asarray(im.convert("RGB").resize((196, 131), Image.BILINEAR))
        write_image(src / f"MFI-WHU_01_{s}.png", small)
        pair.append(small)
    manifest = all_in_focus.build(src, tmp_path / "set", weights, progress=False)
    assert [s["id"] for s in manifest["samples"]] == ["MFI-WHU_01"]
    expected = registry.load_fuser("gacn", str(weights)).fuse(pair)
    fused = read_image(tmp_path / "set/images/MFI-WHU_01.png", mode="rgb")
    mask = read_image(tmp_path / "set/masks/MFI-WHU_01.png", mode="grey")
    np.testing.assert_array_equal(fused, expected.fused)
    assert set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask == 255, expected.decision_map >= 0.5)
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())

    # crops: every kept crop is a window of the full image, both classes present
    with pytest.raises(InputImageError, match="already exists"):
        all_in_focus.crop_set(tmp_path / "set", tmp_path / "set", 64)
    cropped = all_in_focus.crop_set(tmp_path / "set", tmp_path / "crops", 64, stride=32, min_fraction=0.05)
    on_disk = json.loads((tmp_path / "crops/manifest.json").read_text())
    assert on_disk["samples"] == cropped["samples"] and cropped["samples"]
    for s in cropped["samples"]:
        y, x = s["window"]
        crop = read_image(tmp_path / f"crops/images/{s['id']}.png", mode="rgb")
        np.testing.assert_array_equal(crop, fused[y:y + 64, x:x + 64])
        m = read_image(tmp_path / f"crops/masks/{s['id']}.png", mode="grey") > 127
        assert 0.05 <= m.mean() <= 0.95


def test_crop_failure_leaves_nothing(tmp_path):
    """A set whose crops are all one class: clear error, no output folder, no partial folder."""
    set_dir = tmp_path / "set"
    write_image(set_dir / "images/x.png", np.zeros((80, 80, 3), np.uint8))
    write_image(set_dir / "masks/x.png", np.zeros((80, 80), np.uint8))
    (set_dir / "manifest.json").write_text(json.dumps({"samples": [{"id": "x"}]}))
    with pytest.raises(InputImageError, match="no 64×64 crop"):
        all_in_focus.crop_set(set_dir, tmp_path / "crops", 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
