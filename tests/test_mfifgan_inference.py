"""MFIF-GAN post-processing and fuser: SRR against a reference, the size fix, the fuse command."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.inference import mfifgan as inf


def _reference_srr(binary: np.ndarray, n: float, eight: bool = False) -> np.ndarray:
    """Plain BFS flood fill: remove components (fg, then bg of the result) with < n pixels."""
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)] + ([(-1, -1), (-1, 1), (1, -1), (1, 1)] if eight else [])

    def remove(mask):
        out, seen = mask.copy(), np.zeros_like(mask)
        h, w = mask.shape
        for y0 in range(h):
            for x0 in range(w):
                if not mask[y0, x0] or seen[y0, x0]:
                    continue
                comp, queue = [], deque([(y0, x0)])
                seen[y0, x0] = True
                while queue:
                    y, x = queue.popleft()
                    comp.append((y, x))
                    for dy, dx in steps:
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not seen[yy, xx]:
                            seen[yy, xx] = True
                            queue.append((yy, xx))
                if len(comp) < n:
                    for y, x in comp:
                        out[y, x] = False
        return out

    fg = remove(binary.astype(bool))
    return ~remove(~fg)


def _crafted(h=100, w=100) -> np.ndarray:
    """N = 10 at 100×100: objects of 9, 10, 11 px; two diagonal-touching 6-px blobs; holes of 9/10/11."""
    m = np.zeros((h, w), bool)
    m[2, 2:11] = True  # 9 px → removed
    m[5, 2:12] = True  # 10 px (exactly N) → kept (strict <)
    m[8, 2:13] = True  # 11 px → kept
    m[20:22, 20:23] = True  # 6 px
    m[22:24, 23:26] = True  # 6 px touching the first only diagonally: 4-conn removes both, 8-conn keeps 12
    m[40:90, 40:90] = True
    m[45, 45:54] = False  # hole 9 → filled
    m[55, 45:55] = False  # hole 10 → stays
    m[65, 45:56] = False  # hole 11 → stays
    m[75:77, 45:48] = False  # 6-px hole …
    m[77:79, 48:51] = False  # … diagonal neighbour: 4-conn fills both
    return m


@pytest.mark.parametrize("shape", [(100, 100), (101, 100)])  # N = 10 and 10.1 (float threshold)
def test_srr_matches_reference(shape):
    m = _crafted(*shape)
    n = 0.001 * shape[0] * shape[1]
    got = inf.small_region_removal(m)
    np.testing.assert_array_equal(got, _reference_srr(m, n))
    assert not got[2, 2:11].any()
    assert got[5, 2:12].all() == (n <= 10)  # 10 px: kept at N = 10, removed at N = 10.1
    assert got[8, 2:13].all()
    assert not got[20:24, 20:26].any()
    assert got[45, 45:54].all() and not got[65, 45:56].any()
    assert got[75:79, 45:51].all()


def test_srr_connectivity_differs():
    m = _crafted()
    eight = inf.small_region_removal(m, connectivity=8)
    np.testing.assert_array_equal(eight, _reference_srr(m, 10.0, eight=True))
    assert eight[20:22, 20:23].all() and not eight[75:77, 45:48].any()


def test_size_fix_offsets_and_truncation():
    assert [inf.center_crop_offsets(10 + d, 10) for d in (1, 2, 3)] == [0, 1, 2]
    raw = np.zeros((236, 324), np.float32)
    raw[1, :] = 1.0
    raw[2, :] = 128.5 / 255  # truncates to 128 → 128/255 > 0.5
    raw[3, :] = 127.9 / 255  # → 127
    fixed = inf.fix_size(raw, 234, 322)
    assert fixed.shape == (234, 322)
    np.testing.assert_array_equal(fixed[0], 1.0)  # offset 1 for a difference of 2
    assert fixed[1, 0] == np.float32(128 / 255) and fixed[2, 0] == np.float32(127 / 255)


@pytest.fixture(scope="module")
def fuser():
    from fusion_tf.models.mfifgan import build_generator

    tf.keras.utils.set_random_seed(11)
    return inf.MFIFGANFuser(generator=build_generator())


def test_fuser_pixel_selection_grey_and_colour(fuser, rng):
    a = rng.integers(0, 256, (34, 42, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (34, 42, 3), dtype=np.uint8)
    res = fuser.fuse([a, b])
    assert res.raw.shape == (36, 44) and res.decision_map.shape == (34, 42)
    assert set(np.unique(res.decision_map)) <= {0.0, 1.0}
    d = res.decision_map.astype(bool)[..., None]
    np.testing.assert_array_equal(res.fused, np.where(d, a, b))
    # faithful float path gives the same bytes for colour (×255 + 0.5 rounding)
    faithful = inf.MFIFGANFuser(generator=fuser.generator, output_mode="faithful")
    np.testing.assert_array_equal(faithful.fuse([a, b]).fused, res.fused)
    # grey sources are tripled: same map as the RGB pair of identical planes
    ga, gb = a[..., 0], b[..., 0]
    grey = fuser.fuse([ga, gb])
    tripled = fuser.fuse([np.repeat(ga[..., None], 3, -1), np.repeat(gb[..., None], 3, -1)])
    np.testing.assert_array_equal(grey.raw, tripled.raw)
    assert grey.fused.ndim == 2


def test_fuse_command_with_pytorch_npz(fuser, tmp_path, rng):
    from fusion_tf.cli import main
    from fusion_tf.core.imageio import read_image, write_image
    from fusion_tf.weights.mfifgan_npz import generator_state_dict, save_npz

    save_npz(tmp_path / "G.npz", generator_state_dict(fuser.generator))
    a = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    write_image(tmp_path / "x_1.png", a)
    write_image(tmp_path / "x_2.png", b)
    rc = main(["fuse", "--model", "mfifgan", "--weights", str(tmp_path / "G.npz"), str(tmp_path / "x_1.png"),
               str(tmp_path / "x_2.png"), "-o", str(tmp_path / "f.png"), "--save-raw", str(tmp_path / "raw.npy"),
               "--save-map", str(tmp_path / "map.png")])
    assert rc == 0
    raw, final = np.load(tmp_path / "raw.npy"), read_image(tmp_path / "map.png")
    assert raw.shape == (32, 44) and final.shape == (30, 41) and set(np.unique(final)) <= {0, 255}
    np.testing.assert_allclose(raw, fuser.focus_map(a, b), atol=1e-5)
    assert main(["fuse", "--model", "mfifgan", "--weights", str(tmp_path / "missing.weights.h5"),
                 str(tmp_path / "x_1.png"), str(tmp_path / "x_2.png"),
                 "-o", str(tmp_path / "g.png")]) == 2  # unreadable weights: one-line error
    assert not (tmp_path / "g.png").exists()
