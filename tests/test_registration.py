"""Registration of hand-held focus stacks (fusion_tf.core.registration) on synthetic stacks whose
true motion is known: a procedural texture seen through a known transform per frame, each frame
with a different Gaussian defocus blur.  Small images (320×240) so the whole file runs in seconds."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fusion_tf.core.registration import Registration, RegistrationError, apply_registration, register_stack
from fusion_tf.errors import FusionError

W, H = 320, 240
BLURS = (0.0, 1.2, 2.2, 1.6, 0.6)     # defocus sigma per frame (px)


def _texture(h, w, seed=0, low=0.0):
    """Band-limited random texture (features from ~1 to ~20 px), plus an optional smooth shading."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w))
    for sigma, amp in [(1.2, 0.6), (3, 1.0), (8, 1.0), (20, 1.0), (60, low)]:
        if amp:
            n = cv2.GaussianBlur(rng.standard_normal((h, w)), (0, 0), sigma)
            img += amp * n / n.std()
    img = (img - img.mean()) / img.std()
    return np.clip(128 + 38 * img, 0, 255)


def _motion(k, kind, rng):
    """Frame k (relative to the middle) -> scene: rotation/scale about the centre, then a shift."""
    tx, ty = 11.0 * k + rng.uniform(-1, 1), -10.5 * k + rng.uniform(-1, 1)     # >= 10 px per frame
    rot = {"translation": 0.0, "euclidean": 1.5, "affine": 1.0, "homography": 1.0}[kind] * k
    scale = 1.02 ** k if kind in ("affine", "homography") else 1.0             # 2 % per frame
    a = np.deg2rad(rot)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = np.array([W / 2, H / 2])
    m = np.eye(3)
    m[:2, :2] = r
    m[:2, 2] = c - r @ c + (tx, ty)
    if kind == "affine":
        m[0, 1] += 0.005 * k                                                   # a little shear
    if kind == "homography":
        m[2, :2] = (2e-5 * k, -1.5e-5 * k)                                     # mild perspective
    return m


def make_stack(kind, n=5, seed=0, colour=False, low=0.0):
    """Frames (uint8) and true transforms frame -> scene coordinates."""
    base = _texture(H + 160, W + 160, seed, low)
    off = np.array([[1, 0, 80], [0, 1, 80], [0, 0, 1]], float)   # scene origin inside the base image
    rng = np.random.default_rng(seed + 1)
    frames, truth = [], []
    for i in range(n):
        t = off @ _motion(i - n // 2, kind, rng)
        f = cv2.warpPerspective(base, t, (W, H), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        if BLURS[i % len(BLURS)]:
            f = cv2.GaussianBlur(f, (0, 0), BLURS[i % len(BLURS)])
        f = np.clip(f + 0.5, 0, 255).astype(np.uint8)
        frames.append(np.dstack([f, f // 2 + 60, 255 - f]) if colour else f)
        truth.append(t)
    return frames, truth


def to_reference(truth, ref):
    return [np.linalg.inv(truth[ref]) @ t for t in truth]


def corner_rms(est, true):
    """Per frame: RMS distance (px) between the frame's 4 corners mapped by est and by true."""
    c = np.array([[0, 0, 1], [W - 1, 0, 1], [W - 1, H - 1, 1], [0, H - 1, 1]], float)
    out = []
    for e, t in zip(est, true):
        pe, pt = c @ np.asarray(e).T, c @ np.asarray(t).T
        d = pe[:, :2] / pe[:, 2:] - pt[:, :2] / pt[:, 2:]
        out.append(float(np.sqrt(np.mean(np.sum(d * d, axis=1)))))
    return np.array(out)


@pytest.fixture(scope="module")
def affine_stack():
    return make_stack("affine")


@pytest.mark.parametrize("kind, limit", [
    ("translation", 0.3), ("euclidean", 0.3), ("affine", 0.3),
    # 8 parameters, the perspective pair poorly conditioned on a 320x240 frame, and the outer frames
    # are two chained pairs from the reference with 2.2 vs 0.6 px of blur difference: measured 0.27
    ("homography", 0.45)])
def test_known_motion_is_recovered(kind, limit):
    frames, truth = make_stack(kind)
    reg = register_stack(frames, motion=kind)
    assert reg.reference == 2
    err = corner_rms(reg.transforms, to_reference(truth, 2))
    assert err.max() <= limit, f"{kind}: corner RMS errors {np.round(err, 3)} px"
    assert np.array_equal(reg.transforms[2], np.eye(3))
    if kind != "homography":
        for m in reg.transforms:
            assert np.array_equal(m[2], [0, 0, 1])


def test_coarse_to_fine_pyramid(affine_stack):
    """Start ECC on a 80x60 level and refine at 160x120 and 320x240 (warps rescaled between levels);
    or stop at 160x120 (max_size) and scale the estimate up to full resolution."""
    frames, truth = affine_stack
    true = to_reference(truth, 2)
    err = corner_rms(register_stack(frames, coarse_size=100).transforms, true)
    assert err.max() <= 0.3, np.round(err, 3)
    err = corner_rms(register_stack(frames, coarse_size=100, max_size=160).transforms, true)
    assert err.max() <= 0.6, np.round(err, 3)
    # a homography's projective row scales the other way (/2 per level): measured 0.57 px, 1.9 if not
    frames, truth = make_stack("homography")
    reg = register_stack(frames, motion="homography", coarse_size=100, max_size=160)
    err = corner_rms(reg.transforms, to_reference(truth, 2))
    assert err.max() <= 0.9, np.round(err, 3)


@pytest.mark.parametrize("reference, index", [("first", 0), ("middle", 2), (4, 4), (1, 1)])
def test_reference_choice(affine_stack, reference, index):
    frames, truth = affine_stack
    reg = register_stack(frames, motion="affine", reference=reference)
    assert reg.reference == index
    assert np.allclose(reg.transforms[index], np.eye(3))
    err = corner_rms(reg.transforms, to_reference(truth, index))
    assert err.max() <= 0.3, np.round(err, 3)


def test_bad_arguments_are_fusion_errors(affine_stack):
    frames, _ = affine_stack
    for kwargs in ({"motion": "similarity"}, {"reference": 5}, {"reference": "last"}):
        with pytest.raises(FusionError):
            register_stack(frames, **kwargs)
    with pytest.raises(FusionError, match="one size"):
        register_stack([frames[0], frames[1][:200]])


def test_json_round_trip_reproduces_the_warps_exactly(tmp_path):
    frames, _ = make_stack("homography", n=3, colour=True)
    reg = register_stack(frames, motion="homography", reference="first", photometric=True)
    path = tmp_path / "reg.json"
    reg.to_json(path)
    assert [p.name for p in tmp_path.iterdir()] == ["reg.json"]        # no temp file left behind
    back = Registration.from_json(path, frame_size=(W, H), count=3)
    assert back.motion == "homography" and back.reference == 0 and back.area == reg.area
    for a, b in zip(reg.transforms, back.transforms):
        assert np.array_equal(a, b)
    assert back.photometric == reg.photometric
    for i, f in enumerate(frames):
        out = back.warp(f, i)
        assert out.shape == (reg.area[3], reg.area[2], 3)
        assert np.array_equal(out, reg.warp(f, i))


def _one_line_error(path, **kw):
    with pytest.raises(FusionError) as e:
        Registration.from_json(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_malformed_or_mismatched_json_is_one_line_fusion_error(tmp_path, affine_stack):
    frames, _ = affine_stack
    good = tmp_path / "good.json"
    register_stack(frames[:3], motion="translation").to_json(good)
    assert "320x240" in _one_line_error(good, frame_size=(640, 480))
    assert "3 frames" in _one_line_error(good, count=5)
    doc = json.loads(good.read_text())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not valid JSON" in _one_line_error(bad)
    for change in ({"transforms": doc["transforms"][:2]}, {"motion": "warp"}, {"area": [0, 0, 999, 10]},
                   {"version": 99}, {"format": "other"}, {"transforms": [[[1, 0]]] * 3}):
        bad.write_text(json.dumps({**doc, **change}))
        assert "malformed" in _one_line_error(bad)
    del doc["reference"]
    bad.write_text(json.dumps(doc))
    assert "reference" in _one_line_error(bad)
    assert "cannot read" in _one_line_error(tmp_path / "missing.json")


def test_a_frame_that_does_not_belong_names_the_pair(affine_stack):
    frames, _ = affine_stack
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (H, W), dtype=np.uint8)
    smooth = cv2.GaussianBlur(rng.standard_normal((H, W)), (0, 0), 30)
    smooth = np.clip(128 + 60 * smooth / smooth.std(), 0, 255).astype(np.uint8)
    for bad in (noise, smooth):
        stack = list(frames)
        stack[3] = bad
        with pytest.raises(RegistrationError, match="between frame 3 and frame 4 .*did not converge"):
            register_stack(stack, motion="affine")
    stack = list(frames)
    stack[1] = np.full((H, W), 90, np.uint8)
    with pytest.raises(RegistrationError, match=r"frame 2 \(b.png\).*uniform"):
        register_stack(stack, motion="translation", names=[f"{c}.png" for c in "abcde"])


def test_crop_lies_inside_every_warped_frame():
    frames, truth = make_stack("translation")
    reg = register_stack(frames, motion="translation")
    x, y, w, h = reg.area
    # samples inside the crop never reach outside a frame: warping a flat grey frame with a black
    # constant border leaves the crop flat (any weight on a border pixel, positive or negative
    # bicubic lobe, changes the value)
    grey = np.full((H, W), 128, np.uint8)
    outside = np.zeros(4, bool)      # a column/row just outside each side of the crop touches a border
    for m in reg.transforms:
        full = cv2.warpAffine(grey, m[:2], (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)
        assert np.all(full[y:y + h, x:x + w] == 128)
        outside |= [np.any(full[y:y + h, x - 1] != 128), np.any(full[y:y + h, x + w] != 128),
                    np.any(full[y - 1, x:x + w] != 128), np.any(full[y + h, x:x + w] != 128)]
    assert outside.all(), "the crop could be larger"
    # ... and the crop is the largest such rectangle: the true intersection, shrunk by the
    # bicubic kernel's 1 px margin on the shifted frames
    shifts = np.array([t[:2, 2] for t in to_reference(truth, reg.reference)])
    x0 = int(np.ceil(max(0, (shifts[:, 0] + 1).max())))
    x1 = int(np.floor(min(W - 1, (shifts[:, 0] + W - 2).min())))
    y0 = int(np.ceil(max(0, (shifts[:, 1] + 1).max())))
    y1 = int(np.floor(min(H - 1, (shifts[:, 1] + H - 2).min())))
    assert (x, y, x + w - 1, y + h - 1) == (x0, y0, x1, y1)
    assert w < W - 40 and h < H - 40          # the shifts are >= 10 px per frame
    out = reg.warp(frames[0], 0)
    assert out.shape == (h, w) and out.dtype == np.uint8
    reg.crop = False
    assert reg.warp(frames[0], 0).shape == (H, W)
    assert np.array_equal(reg.warp(frames[reg.reference], reg.reference), frames[reg.reference])


def test_motion_none_is_the_identity(affine_stack):
    frames, _ = affine_stack
    reg = register_stack(frames, motion="none")
    assert reg.area == (0, 0, W, H)
    for i, f in enumerate(frames):
        assert np.array_equal(reg.transforms[i], np.eye(3))
        assert np.array_equal(reg.warp(f, i), f)


def test_streaming_iterable_with_count_and_progress(affine_stack):
    frames, truth = affine_stack
    calls = []
    reg = register_stack(iter(frames), motion="affine", count=5, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 5) for i in range(1, 6)]
    assert corner_rms(reg.transforms, to_reference(truth, 2)).max() <= 0.3
    warped = list(apply_registration(iter(frames), reg))
    assert all(np.array_equal(a, reg.warp(f, i)) for i, (a, f) in enumerate(zip(warped, frames)))
    # the warped stack is aligned: frame 0 and the reference agree far better than unregistered
    a, b = cv2.GaussianBlur(warped[0], (0, 0), 3), cv2.GaussianBlur(warped[2], (0, 0), 3)
    assert np.abs(a.astype(float) - b).mean() < 3
    with pytest.raises(FusionError, match="4 frames"):
        list(apply_registration(iter(frames[:4]), reg))
    with pytest.raises(FusionError, match="more frames"):
        list(apply_registration(frames + frames[:1], reg))
    with pytest.raises(FusionError, match="320x240"):
        reg.warp(frames[0][:100], 0)


def test_photometric_gain_and_offset():
    frames, truth = make_stack("affine", low=1.5)         # a scene with smooth shading, like real ones
    gains, offsets = [1.10, 0.90, 1.0, 1.05, 0.95], [-5, 8, 0, 3, -2]
    lit = [np.clip(f * g + o, 0, 255).astype(np.uint8) for f, g, o in zip(frames, gains, offsets)]
    reg = register_stack(lit, motion="affine", photometric=True)
    assert corner_rms(reg.transforms, to_reference(truth, 2)).max() <= 0.3
    for (g, o), gt, ot in zip(reg.photometric, gains, offsets):
        assert g == pytest.approx(1 / gt, rel=0.02) and o == pytest.approx(-ot / gt, abs=3)
    ref = cv2.GaussianBlur(reg.warp(lit[2], 2), (0, 0), 8).astype(float)
    for i in (0, 1, 3, 4):
        fixed = cv2.GaussianBlur(reg.warp(lit[i], i), (0, 0), 8).astype(float)
        assert abs(fixed.mean() - ref.mean()) < 1.0
