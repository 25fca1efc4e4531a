"""Depth (index) maps (issue 14): per pixel, the index of the frame the fused result takes.

Known truth: a 4-frame 96×96 stack made from one sharp texture, frame k sharp only in quadrant k
(elsewhere Gaussian-blurred, σ 2).  Every model runs with its shipped weights; the depth must name
frame k in the interior of quadrant k (8-pixel margin: the blur and the models' receptive fields mix
quadrants near their borders).  Criteria, from measurements of these stacks:

* selection models select source pixels, so the depth is checked **exactly** (fused == the source
  named by the depth, every pixel), plus the majority of each quadrant: MFIF-GAN ≥ 0.95 (measured
  1.000); GACN calibration ≥ 0.8 (measured 0.85–1.0: its hard selection's frequent ties go to the
  lowest index — the pixels the result really takes, so the depth reports them);
* GACN serial (dominant frame of the blend) ≥ 0.95 (measured 1.000);
* MFF-GAN / GIPC-GAN (per-pixel focus measure argmax) ≥ 0.85 (measured 0.94–0.96: a per-pixel
  high-pass residual crosses zero inside sharp texture, where a blurred frame can win).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import fusion_tf
from fusion_tf.core import focus
from fusion_tf.inference.base import FusionResult, serial_stream

SIZE, FRAMES, MARGIN = 96, 4, 8


def _stack(seed: int = 0, frames: int = FRAMES, colour: bool = False):
    """``(frames, region)``: frame k is sharp in region k (quadrants; with 3 frames quadrant 3 is 0's)."""
    rng = np.random.default_rng(seed)
    extra = (3,) if colour else ()
    noise = rng.normal(size=(SIZE, SIZE) + extra)
    tex = ndimage.gaussian_filter(noise, (0.8, 0.8) + (0,) * len(extra))
    tex = (tex - tex.min()) / (tex.max() - tex.min()) * 190.0 + 30.0
    blur = ndimage.gaussian_filter(tex, (2.0, 2.0) + (0,) * len(extra))
    h = SIZE // 2
    region = np.zeros((SIZE, SIZE), int)
    region[:h, h:], region[h:, :h], region[h:, h:] = 1, 2, 3
    region %= frames
    out = []
    for k in range(frames):
        m = region == k
        out.append(np.round(np.where(m[..., None] if colour else m, tex, blur)).astype(np.uint8))
    return out, region


def _fractions(depth: np.ndarray, region: np.ndarray) -> list[float]:
    """Per region k: the share of its interior pixels whose depth is k."""
    out = []
    for k in range(region.max() + 1):
        inner = ndimage.binary_erosion(region == k, iterations=MARGIN)
        out.append(float(np.mean(depth[inner] == k)))
    return out


def _taken(frames, depth) -> np.ndarray:
    """The source pixel the depth names, per pixel."""
    return np.choose(depth[..., None] if frames[0].ndim == 3 else depth, frames)


@pytest.fixture(scope="module")
def stack():
    return _stack()


@pytest.fixture(scope="module")
def fusers():
    cache = {}

    def get(model):
        if model not in cache:
            cache[model] = fusion_tf.load_fuser(model)
        return cache[model]

    return get


# -- writing ------------------------------------------------------------------------------------
def test_depth_png_has_n_levels_scaled_to_16_bit(tmp_path):
    index = np.arange(7 * 5, dtype=np.int32).reshape(7, 5) % 7
    d, p = focus.write_depth_map(tmp_path / "d.png", index, 7, preview=tmp_path / "p.png")
    with Image.open(d) as im:
        assert im.mode.startswith("I;16")
        levels = np.asarray(im)
    expected = [round(i * 65535 / 6 + 1e-9) for i in range(7)]  # 10922.5 → 10923: halves up
    assert levels.dtype == np.uint16 and np.unique(levels).tolist() == expected
    assert np.array_equal(levels, np.asarray(expected, np.uint16)[index])
    with Image.open(p) as im:
        rgb = np.asarray(im)
    assert im.mode == "RGB" and rgb.shape == (7, 5, 3)
    assert len({tuple(c) for c in rgb.reshape(-1, 3)}) == 7  # one colour per frame
    assert sorted(x.name for x in tmp_path.iterdir()) == ["d.png", "p.png"]  # no temporaries left


def test_depth_levels_two_frames_and_bad_input(tmp_path):
    assert focus.depth_levels(np.array([[0, 1]]), 2).tolist() == [[0, 65535]]
    with pytest.raises(ValueError):
        focus.depth_levels(np.array([[0, 3]]), 3)
    with pytest.raises(ValueError):
        focus.depth_levels(np.array([[0]]), 1)
    with pytest.raises(fusion_tf.FusionError):
        focus.write_depth_map(tmp_path / "d.jpg", np.zeros((2, 2), int), 2)
    assert not list(tmp_path.iterdir())


def test_focus_argmax_streams_with_ties_to_the_lowest_index():
    arg = focus.FocusArgmax()
    scores = [np.array([[1.0, 2.0, 0.0]]), np.array([[3.0, 2.0, 0.0]]), np.array([[3.0, 5.0, 0.0]])]
    frames = [object(), object(), object()]
    assert list(arg.track(frames, lambda f: scores[frames.index(f)])) == frames  # passed through unchanged
    assert arg.index.tolist() == [[1, 2, 0]] and arg.count == 3


# -- per model ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model,multi,minimum,exact", [
    ("gacn", "calibration", 0.8, True),
    ("gacn", "serial", 0.95, False),
    ("mfifgan", None, 0.95, True),
    ("mffgan", None, 0.85, False),
    ("gipcgan", None, 0.85, False),
])
def test_depth_names_the_sharp_frame(fusers, stack, model, multi, minimum, exact):
    frames, region = stack
    result = fusers(model).fuse_stream(iter(frames), *([multi] if multi else []))
    assert result.depth.dtype == np.int32 and result.depth.shape == region.shape and result.frames == FRAMES
    fractions = _fractions(result.depth, region)
    assert min(fractions) >= minimum, fractions
    if exact:  # a selection: the fused pixel *is* the source pixel the depth names
        assert np.array_equal(result.fused, _taken(frames, result.depth))


def test_depth_of_a_colour_pair(fusers):
    frames, region = _stack(seed=1, frames=2, colour=True)
    for model in ("gacn", "mffgan"):
        result = fusion_tf.fuse(frames, fuser=fusers(model))
        assert result.frames == 2 and set(np.unique(result.depth)) == {0, 1}
        assert min(_fractions(result.depth, region)) >= 0.85


def test_mffgan_pair_depth_is_its_screening_map(fusers, stack):
    import tensorflow as tf

    from fusion_tf.objectives.mffgan import screening_maps

    fuser = fusers("mffgan")
    near, far = stack[0][:2]
    depth = fuser.fuse([near, far]).depth
    planes = [tf.constant(((x.astype(np.float32) - 127.5) / 127.5)[None, ..., None]) for x in (near, far)]
    s_far = screening_maps(*planes)[1].numpy()[0, ..., 0]
    assert np.array_equal(depth, s_far.astype(np.int32))


def test_tiled_focus_score_is_exact(stack):
    from fusion_tf.inference.luma import LumaFuser

    whole, tiled = object.__new__(LumaFuser), object.__new__(LumaFuser)
    whole.tile, tiled.tile = None, 40
    frame = stack[0][1]
    assert np.array_equal(whole.focus_score(frame), tiled.focus_score(frame))


# -- faithfulness: depth tracking leaves the fused bytes alone --------------------------------------
@pytest.mark.parametrize("model", ["mffgan", "mfifgan"])
def test_fused_output_is_unchanged_by_depth_tracking(fusers, stack, model):
    """The serial fusion without any depth bookkeeping (the pre-depth code path) gives the same bytes."""
    fuser = fusers(model)
    frames = stack[0][:3]
    plain = serial_stream(iter(frames), fuser.fuse_pair, model)[0]
    assert np.array_equal(fuser.fuse_stream(iter(frames)).fused, plain)


def test_api_write_depth(tmp_path, fusers, stack):
    frames, _ = stack
    result = fusion_tf.fuse(frames, fuser=fusers("gacn"))
    from fusion_tf import api

    api.write_depth(result, tmp_path / "d.png", preview=tmp_path / "p.png")
    with Image.open(tmp_path / "d.png") as im:
        assert sorted(np.unique(np.asarray(im)).tolist()) == [0, 21845, 43690, 65535]
    with pytest.raises(ValueError):  # a result without a depth map
        api.write_depth(FusionResult(fused=frames[0]), tmp_path / "x.png")


# -- command line (wired by the lead in fusion_tf/cli.py) -------------------------------------------
def test_cli_save_depth_and_preview(tmp_path, stack, capsys):
    from fusion_tf.cli import main

    paths = []
    for k, frame in enumerate(stack[0]):
        paths.append(str(tmp_path / f"f{k}.png"))
        Image.fromarray(frame).save(paths[-1])
    out, depth, preview = tmp_path / "fused.png", tmp_path / "d.png", tmp_path / "d-preview.png"
    assert main(["fuse", "--model", "gacn", *paths, "-o", str(out), "--save-depth", str(depth),
                 "--depth-preview", str(preview)]) == 0
    with Image.open(depth) as im:
        assert len(np.unique(np.asarray(im))) == FRAMES
    assert preview.is_file()
    # the depth map joins the output checks: it may not overwrite a source
    assert main(["fuse", "--model", "gacn", *paths, "-o", str(tmp_path / "o2.png"), "--save-depth", paths[0]]) == 2
    assert "input images" in capsys.readouterr().err
    assert main(["fuse", "--model", "gacn", *paths, "-o", str(tmp_path / "o3.png"), "--depth-preview",
                 str(tmp_path / "p3.png")]) == 2  # a preview needs the depth map itself
    assert not (tmp_path / "o2.png").exists() and not (tmp_path / "o3.png").exists()


# -- the depth map costs nothing unless it is asked for ---------------------------------------------
@pytest.mark.parametrize("model", ["mffgan", "mfifgan", "gacn"])
def test_depth_false_skips_the_map_and_keeps_the_bytes(fusers, stack, model, monkeypatch):
    """``depth=False`` (what ``fuse`` passes without ``--save-depth``): no depth map, the same fused
    bytes, and the luma models run no focus measure at all (it was ~5 ms a 520² frame)."""
    fuser = fusers(model)
    frames = stack[0][:3]
    calls = []
    if hasattr(fuser, "focus_score"):
        real = fuser.focus_score
        monkeypatch.setattr(fuser, "focus_score", lambda frame: calls.append(1) or real(frame))
    full = fusion_tf.fuse(frames, fuser=fuser)
    measured = len(calls)
    lean = fusion_tf.fuse(frames, fuser=fuser, depth=False)
    assert full.depth is not None and lean.depth is None
    assert lean.frames == full.frames == 3
    assert np.array_equal(lean.fused, full.fused)
    assert len(calls) == measured  # none for the lean run
    if model == "mffgan":
        assert measured == 3
        pair = fusion_tf.fuse(frames[:2], fuser=fuser, depth=False)  # a pair takes api.fuse's other branch
        assert pair.depth is None and len(calls) == measured


def test_cli_and_batch_measure_focus_only_for_save_depth(tmp_path, stack, monkeypatch):
    from fusion_tf.cli import main
    from fusion_tf.inference.luma import LumaFuser

    calls = []
    real = LumaFuser.focus_score
    monkeypatch.setattr(LumaFuser, "focus_score", lambda self, frame: calls.append(1) or real(self, frame))
    group = tmp_path / "in" / "g1"
    group.mkdir(parents=True)
    paths = []
    for k, frame in enumerate(stack[0][:3]):
        paths.append(str(group / f"f{k}.png"))
        Image.fromarray(frame).save(paths[-1])
    assert main(["fuse", "--model", "mffgan", *paths, "-o", str(tmp_path / "a.png")]) == 0
    assert calls == []
    assert main(["fuse", "--model", "mffgan", "--batch", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    assert calls == [] and (tmp_path / "out" / "g1.png").is_file()
    assert main(["fuse", "--model", "mffgan", *paths, "-o", str(tmp_path / "b.png"),
                 "--save-depth", str(tmp_path / "d.png")]) == 0
    assert len(calls) == 3 and (tmp_path / "d.png").is_file()
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))  # asking for depth changes no output byte
