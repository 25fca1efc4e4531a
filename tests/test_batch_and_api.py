"""`fuse --batch` and the Python API (`fusion_tf.fuse`, `fusion_tf.load_fuser`): same results as the
single-group command, per-group failures that do not stop the batch, resumable runs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fusion_tf
from fusion_tf.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "samples"


def _crop(name: str, letter: str, box=(200, 264, 150, 230)) -> np.ndarray:
    y0, y1, x0, x1 = box
    return np.asarray(Image.open(SAMPLES / f"{name}-{letter}.jpg"))[y0:y1, x0:x1]


@pytest.fixture
def batch_dir(tmp_path) -> Path:
    """Two named pairs, one sub-folder stack of three frames, and one broken pair (sizes differ)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("lytro-01", "lytro-05"):
        for s in "AB":
            Image.fromarray(_crop(name, s)).save(folder / f"{name}-{s}.png")
    stack = folder / "stack"
    stack.mkdir()
    for i, (name, s) in enumerate([("lytro-01", "A"), ("lytro-01", "B"), ("lytro-01", "A")], start=1):
        Image.fromarray(_crop(name, s)).save(stack / f"frame{i}.png")
    Image.fromarray(_crop("lytro-05", "A")).save(folder / "broken-A.png")
    Image.fromarray(_crop("lytro-05", "B", (0, 40, 0, 40))).save(folder / "broken-B.png")
    return folder


def _rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {r["group"]: r for r in csv.DictReader(fh)}


def test_batch_fuses_every_group_reports_failures_and_resumes(batch_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fuse", "--batch", str(batch_dir), "-o", str(out)]) == 2  # one group failed
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "group broken" in captured.err and "size mismatch" in captured.err
    assert "3 fused, 0 skipped, 1 failed" in captured.out
    rows = _rows(out / "batch.csv")
    assert {g: r["status"] for g, r in rows.items()} == {
        "lytro-01": "fused", "lytro-05": "fused", "stack": "fused", "broken": "failed"}
    assert rows["stack"]["frames"] == "3" and not (out / "broken.png").exists()
    # a group fused by the batch == the same group fused on its own
    single = tmp_path / "single.png"
    assert main(["fuse", str(batch_dir / "lytro-05-A.png"), str(batch_dir / "lytro-05-B.png"), "-o", str(single)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out / "lytro-05.png")), np.asarray(Image.open(single)))
    stack = sorted((batch_dir / "stack").iterdir())
    assert main(["fuse", *map(str, stack), "-o", str(tmp_path / "stack.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out / "stack.png")),
                                  np.asarray(Image.open(tmp_path / "stack.png")))
    # resume: existing outputs are kept, not fused again
    before = (out / "lytro-01.png").stat().st_mtime_ns
    (out / "lytro-05.png").unlink()
    assert main(["fuse", "--batch", str(batch_dir), "-o", str(out), "--skip-existing"]) == 2
    rows = _rows(out / "batch.csv")
    assert rows["lytro-01"]["status"] == "skipped" and rows["lytro-05"]["status"] == "fused"
    assert (out / "lytro-01.png").stat().st_mtime_ns == before


def test_batch_refuses_bad_setups_before_loading(batch_dir, tmp_path, capsys):
    cases = [
        (["fuse", "--batch", str(batch_dir), "-o", str(batch_dir / "out")], "outside the --batch folder"),
        (["fuse", "--batch", str(batch_dir), "-o", str(batch_dir)], "outside the --batch folder"),
        (["fuse", "--batch", str(tmp_path / "none"), "-o", str(tmp_path / "o")], "not a folder"),
        (["fuse", "--batch", str(batch_dir), "x.png", "-o", str(tmp_path / "o")], "takes no image arguments"),
        (["fuse", "--batch", str(batch_dir), "-o", str(tmp_path / "o"), "--save-raw", "r.npy"], "do not apply"),
        (["fuse", "a.png", "b.png", "-o", str(tmp_path / "o.png"), "--skip-existing"], "belongs to --batch"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists() and not (batch_dir / "out").exists()


def test_python_api_equals_the_command_line(tmp_path, capsys):
    a, b = _crop("lytro-01", "A"), _crop("lytro-01", "B")
    pa, pb = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(a).save(pa)
    Image.fromarray(b).save(pb)
    out = tmp_path / "cli.png"
    assert main(["fuse", "--model", "gacn", str(pa), str(pb), "-o", str(out)]) == 0
    cli = np.asarray(Image.open(out))
    from_paths = fusion_tf.fuse([pa, str(pb)], model="gacn")
    np.testing.assert_array_equal(from_paths.fused, cli)
    fuser = fusion_tf.load_fuser("gacn")  # loaded once, reused
    np.testing.assert_array_equal(fusion_tf.fuse([a, b], fuser=fuser).fused, cli)
    assert from_paths.decision_map.shape == a.shape[:2]
    three = fusion_tf.fuse([pa, pb, pa], fuser=fuser)  # a stack streams through calibration
    assert three.fused.shape == a.shape
    with pytest.raises(fusion_tf.FusionError, match="at least 2"):
        fusion_tf.fuse([a], fuser=fuser)
    with pytest.raises(fusion_tf.FusionError, match="no shipped weights"):
        fusion_tf.load_fuser("gipcgan-compact")


def test_align_affine_undoes_a_hand_held_shift(tmp_path, capsys):
    """A far frame moved by (12, −9) px and scaled 1.5 %, fused with --align affine (reference: the near
    frame) ≈ the fusion of the aligned pair, within 2 grey levels on average over the common area."""
    import cv2

    from fusion_tf.core.registration import register_stack

    a = np.asarray(Image.open(SAMPLES / "lytro-01-A.jpg"))[60:460, 60:460]
    b = np.asarray(Image.open(SAMPLES / "lytro-01-B.jpg"))[60:460, 60:460]
    h, w = b.shape[:2]
    moved = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1.015)
    moved[:, 2] += (12.0, -9.0)
    b_moved = cv2.warpAffine(b, moved, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    Image.fromarray(a).save(paths[0])
    Image.fromarray(b_moved).save(paths[1])
    out, plain = tmp_path / "aligned.png", tmp_path / "plain.png"
    assert main(["fuse", *map(str, paths), "-o", str(out), "--align", "affine", "--align-reference", "1"]) == 0
    assert main(["fuse", *map(str, paths), "-o", str(plain)]) == 0
    x, y, cw, ch = register_stack([a, b_moved], motion="affine", reference=0).area
    fused = np.asarray(Image.open(out)).astype(float)
    assert fused.shape[:2] == (ch, cw) and cw < w and ch < h  # cropped to what both frames cover
    truth = fusion_tf.fuse([a, b]).fused[y:y + ch, x:x + cw].astype(float)
    m = 12  # the network's border effects at the crop edge
    aligned_error = np.abs(fused - truth)[m:-m, m:-m].mean()
    unaligned_error = np.abs(np.asarray(Image.open(plain)).astype(float)[y:y + ch, x:x + cw] - truth)[m:-m, m:-m].mean()
    assert aligned_error <= 2.0, aligned_error
    assert unaligned_error > 3 * aligned_error  # the test can tell ghosting from alignment


def test_align_command_writes_frames_and_transforms_that_fuse_reuses(tmp_path, capsys):
    """`fusion-tf align` writes the registered frames and a transforms file; `fuse --transforms` with that
    file gives the same result as `fuse --align` estimating it again (one alignment, many stacks)."""
    import cv2

    a = np.asarray(Image.open(SAMPLES / "lytro-05-A.jpg"))[100:340, 100:420]
    b = np.asarray(Image.open(SAMPLES / "lytro-05-B.jpg"))[100:340, 100:420]
    h, w = b.shape[:2]
    shift = np.float32([[1, 0, -10.0], [0, 1, 7.0]])
    b = cv2.warpAffine(b, shift, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    paths = [str(tmp_path / "near.png"), str(tmp_path / "far.png")]
    Image.fromarray(a).save(paths[0])
    Image.fromarray(b).save(paths[1])
    out = tmp_path / "aligned"
    assert main(["align", *paths, "-o", str(out), "--align", "translation", "--align-reference", "first"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["far.png", "near.png", "transforms.json"]
    near, far = (np.asarray(Image.open(out / f"{n}.png")).astype(float) for n in ("near", "far"))
    assert near.shape == far.shape and near.shape[1] <= w - 10 and near.shape[0] <= h - 7
    # the aligned far frame matches the unshifted original (up to sub-pixel interpolation); unaligned, it does not
    original = np.asarray(Image.open(SAMPLES / "lytro-05-B.jpg"))[100:340, 100:420].astype(float)
    x, y = (int(v) for v in __import__("json").loads((out / "transforms.json").read_text())["area"][:2])
    window = (slice(y, y + far.shape[0]), slice(x, x + far.shape[1]))
    aligned_error = np.abs(far - original[window]).mean()
    unaligned_error = np.abs(b.astype(float)[window] - original[window]).mean()
    assert aligned_error < 2.5 and aligned_error < unaligned_error / 4, (aligned_error, unaligned_error)
    estimated, reused = tmp_path / "estimated.png", tmp_path / "reused.png"
    assert main(["fuse", *paths, "-o", str(estimated), "--align", "translation", "--align-reference", "1"]) == 0
    assert main(["fuse", *paths, "-o", str(reused), "--transforms", str(out / "transforms.json")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(estimated)), np.asarray(Image.open(reused)))
    # a transforms file for another stack is refused in one line, before anything is written
    other = [str(tmp_path / "small-A.png"), str(tmp_path / "small-B.png")]
    for p in other:
        Image.fromarray(a[:64, :64]).save(p)
    capsys.readouterr()
    assert main(["fuse", *other, "-o", str(tmp_path / "x.png"), "--transforms", str(out / "transforms.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "64x64" in err and not (tmp_path / "x.png").exists()
    assert main(["align", *paths, "-o", str(out)]) == 2  # not empty: aligned frames would mix


def test_align_registers_16_bit_frames_like_their_8_bit_content():
    """16-bit frames are registered on the 8-bit scale and warped at 16 bits: the 16-bit aligned fusion
    is 257 × the 8-bit one up to interpolation and rounding."""
    import cv2

    a = np.asarray(Image.open(SAMPLES / "lytro-05-A.jpg"))[100:300, 100:360]
    b = np.asarray(Image.open(SAMPLES / "lytro-05-B.jpg"))[100:300, 100:360]
    h, w = b.shape[:2]
    b = cv2.warpAffine(b, np.float32([[1, 0, 8.0], [0, 1, -6.0]]), (w, h), flags=cv2.INTER_CUBIC,
                       borderMode=cv2.BORDER_REPLICATE)
    eight = fusion_tf.fuse([a, b], model="gacn", align="translation", align_reference=0).fused
    sixteen = fusion_tf.fuse([a.astype(np.uint16) * 257, b.astype(np.uint16) * 257], model="gacn",
                             align="translation", align_reference=0).fused
    assert sixteen.dtype == np.uint16 and sixteen.shape == eight.shape
    assert np.abs(sixteen.astype(float) / 257.0 - eight).mean() < 0.5


def test_batch_save_depth_writes_one_depth_map_per_group(batch_dir, tmp_path, capsys):
    out, depth = tmp_path / "out", tmp_path / "depth"
    assert main(["fuse", "--model", "gacn", "--batch", str(batch_dir), "-o", str(out), "--save-depth", str(depth)]) == 2
    assert sorted(p.name for p in depth.iterdir()) == ["lytro-01.png", "lytro-05.png", "stack.png"]  # not the broken one
    stack = np.asarray(Image.open(depth / "stack.png"))
    assert stack.dtype == np.uint16 and set(np.unique(stack)) <= {0, 32768, 65535}  # 3 frames → 3 levels
    pair = np.asarray(Image.open(depth / "lytro-01.png"))
    assert set(np.unique(pair)) == {0, 65535}  # both frames of the pair are taken somewhere
    capsys.readouterr()
    assert main(["fuse", "--batch", str(batch_dir), "-o", str(tmp_path / "o2"), "--save-depth",
                 str(batch_dir / "d")]) == 2
    assert "outside the --batch folder" in capsys.readouterr().err and not (tmp_path / "o2").exists()


def test_batch_with_an_unreadable_first_frame_still_fuses_the_other_groups(batch_dir, tmp_path, capsys):
    """``--tile auto`` sizes the batch from the groups' file headers; a file that is no image must
    fail its own group only, as any bad input does."""
    (batch_dir / "garbage-A.png").write_bytes(b"not a PNG at all")
    (batch_dir / "garbage-B.png").write_bytes(b"not a PNG either")
    out = tmp_path / "out"
    assert main(["fuse", "--batch", str(batch_dir), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert "3 fused, 0 skipped, 2 failed" in captured.out and "Traceback" not in captured.err
    rows = _rows(out / "batch.csv")
    assert rows["garbage"]["status"] == "failed" and "cannot read image" in rows["garbage"]["message"]
    assert rows["lytro-01"]["status"] == "fused"
