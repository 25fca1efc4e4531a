"""Tiled fusion (``tile=`` / ``--tile``): tiled output equals whole-image output for every model, the
halo is each network's receptive field, the SE statistics pre-pass reproduces whole-image means, and
the network never sees more than one window.

Image 97×131, tile 32 (MFIF-GAN: 73×97, tile 24, one SE block — the full network's halo of 88 would
leave no interior tile at test size): odd sizes, interior tiles with real neighbours on every side,
border tiles with the image's zero padding, and (MFIF-GAN) an output overhanging H×W.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf import registry
from fusion_tf.cli import main
from fusion_tf.core.imageio import read_image
from fusion_tf.errors import FusionError
from fusion_tf.inference import gacn_tiled, tiling
from fusion_tf.inference.mfifgan_tiled import TiledMFIFGAN
from fusion_tf.inference.gacn import grey_input, to_unit
from fusion_tf.models.gacn import spatial_frequency

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "samples"
GACN_WEIGHTS = "reference/gacn/weights/GACN_state_dict_pytorch_layout.npz"
H, W, TILE = 97, 131, 32


def _crop(path, y=180, x=150, h=H, w=W):
    return read_image(path)[y : y + h, x : x + w]


@pytest.fixture(scope="module")
def lytro_pair():
    return _crop(SAMPLES / "lytro-01-A.jpg"), _crop(SAMPLES / "lytro-01-B.jpg")


#: Tiled and whole-image runs compute each output pixel from the same inputs, but the convolution
#: kernels block the work by image size, so the float32 sums may be ordered differently: measured
#: |Δ raw| ≤ 3e-7 with oneDNN off (Eigen; 0 with oneDNN on, AMD EPYC).  Raw outputs are tanh values
#: in (−1, 1); 1e-5 absorbs that noise while an error in the halo shows up ≥ 6.5e-3 (the "halo − 1"
#: checks below).  Fused uint8 images: a near-tie can round the other way, so ≤ 1 grey level on
#: ≤ 0.1 % of values (measured: none).
RAW_NOISE = 1e-5


def _assert_fused_close(got: np.ndarray, want: np.ndarray) -> None:
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) <= 1e-3, (diff.max(), np.mean(diff > 0))


def _assert_tiled_matches(tiled, whole) -> None:
    assert np.abs(tiled.raw - whole.raw).max() <= RAW_NOISE
    _assert_fused_close(tiled.fused, whole.fused)


def _reach(changed: np.ndarray, centre: tuple[int, int]) -> int:
    """Chebyshev distance from ``centre`` of the farthest changed pixel (−1: nothing changed)."""
    ys, xs = np.nonzero(changed)
    if ys.size == 0:
        return -1
    return int(max(np.abs(ys - centre[0]).max(), np.abs(xs - centre[1]).max()))


def _randomise(model, seed: int, gain: float = 1.5, unit_gamma: bool = False) -> None:
    """Weights of a useful size (the 1e-3 initialisation makes outputs almost constant, which would
    make any equality test trivially true); BN variances stay positive.

    ``unit_gamma``: BN scales from U(0.5, 1.5) instead of N(0, 0.1), so a change of one input pixel
    still moves the output clearly at the edge of the receptive field.  With N(0, 0.1) each BN layer
    damps the signal ~10×: in GIPC-GAN's paper variant (8 BN layers) the outermost ring then moved by
    ~6e-8, one float32 ulp, and whether it moved at all depended on the CPU's summation order."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape = tuple(v.shape)
        if "variance" in v.name or (unit_gamma and "gamma" in v.name):
            v.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        elif len(shape) == 4:
            v.assign((rng.normal(0, gain, shape) / np.sqrt(np.prod(shape[:3]))).astype(np.float32))
        else:
            v.assign(rng.normal(0, 0.1, shape).astype(np.float32))


def _gipcgan_weights(tmp_path, variant: str, seed: int, unit_gamma: bool = False) -> str:
    from fusion_tf.models.gipcgan import build_generator

    g = build_generator(variant)
    _randomise(g, seed, unit_gamma=unit_gamma)
    path = tmp_path / f"{variant}.weights.h5"
    g.save_weights(str(path))
    return str(path)


# ----------------------------------------------------------------------------------------------
# Geometry and statistics, no network
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("align", [1, 4])
def test_grid_partitions_the_image_and_aligns_windows(align):
    tiles = tiling.tile_grid(H, W, 30, 7, align)
    count = np.zeros((H, W), int)
    for t in tiles:
        count[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert t.wy0 == max(0, t.y0 - tiling.round_up(7, align)) and t.wx1 == min(W, t.x1 + tiling.round_up(7, align))
        assert t.wy0 % align == 0 and t.wx0 % align == 0 and t.y0 % align == 0
    assert (count == 1).all()


def test_stitch_is_exact_with_the_halo_and_only_with_it(rng):
    """A zero-padded 7×7 box sum (radius 3): halo 3 reproduces it, halo 2 does not."""
    x = rng.normal(size=(H, W)).astype(np.float32)

    def box(a):
        p = np.pad(a, 3)
        return sum(p[i : i + a.shape[0], j : j + a.shape[1]] for i in range(7) for j in range(7))

    whole = box(x)
    assert np.allclose(tiling.stitch(box, [x], tiling.tile_grid(H, W, TILE, 3)), whole, atol=1e-5)
    assert not np.allclose(tiling.stitch(box, [x], tiling.tile_grid(H, W, TILE, 2)), whole, atol=1e-3)


def test_channel_means_equal_whole_image_means(rng):
    x = rng.normal(size=(H, W, 5))
    probe = lambda w: w[None]  # noqa: E731
    got = tiling.channel_means(probe, [x], tiling.tile_grid(H, W, TILE, 0))
    assert np.allclose(got[0], x.mean(axis=(0, 1)), rtol=0, atol=1e-12)
    # stride 4 (MFIF-GAN's quarter-resolution map): ⌈H/4⌉×⌈W/4⌉ positions, overhang included
    quarter = lambda w: w[None, ::4, ::4]  # noqa: E731
    got4 = tiling.channel_means(quarter, [x], tiling.tile_grid(H, W, TILE, 8, 4), stride=4)
    assert np.allclose(got4[0], x[::4, ::4].mean(axis=(0, 1)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("tile", [0, 8, -32, 40.5, True, "64"])
def test_bad_tile_is_a_one_line_error(tile):
    with pytest.raises(FusionError, match="--tile"):
        tiling.check_tile(tile)


# ----------------------------------------------------------------------------------------------
# Tiled == whole image, per model
# ----------------------------------------------------------------------------------------------
def test_mffgan_tiled_equals_whole(lytro_pair):
    """Purely local network: the same raw output up to float summation order (bit-identical with
    oneDNN on; ≤ 2e-7 with it off) and fused image (shipped weights, colour)."""
    whole = registry.load_fuser("mffgan").fuse(list(lytro_pair))
    tiled = registry.load_fuser("mffgan", tile=TILE).fuse(list(lytro_pair))
    _assert_tiled_matches(tiled, whole)
    # the halo is needed: one pixel less and interior tiles go wrong (measured 6.6e-3)
    fuser = registry.load_fuser("mffgan", tile=TILE)
    fuser.halo -= 1
    assert np.abs(fuser.fuse(list(lytro_pair)).raw - whole.raw).max() > 100 * RAW_NOISE


@pytest.mark.parametrize("model, variant", [("gipcgan", "paper"), ("gipcgan-compact", "count_matched")])
def test_gipcgan_tiled_equals_whole(tmp_path, lytro_pair, model, variant):
    """Unit-scale BN (``unit_gamma``): with the small default scales a halo one pixel short moved the
    paper variant's output by only 3e-8, below float noise, so no tolerance could tell it apart."""
    weights = _gipcgan_weights(tmp_path, variant, seed=7, unit_gamma=True)
    grey = [im.mean(axis=-1).astype(np.uint8) for im in lytro_pair]
    whole = registry.load_fuser(model, weights).fuse(grey)
    tiled = registry.load_fuser(model, weights, tile=TILE).fuse(grey)
    assert whole.raw.std() > 0.1  # a network whose output depends on the image (0.47 / 0.33)
    _assert_tiled_matches(tiled, whole)
    short = registry.load_fuser(model, weights, tile=TILE)
    short.halo -= 1  # measured 2.2e-2 (paper) / 7.3e-2 (count_matched)
    assert np.abs(short.fuse(grey).raw - whole.raw).max() > 100 * RAW_NOISE


@pytest.fixture(scope="module")
def gacn_pair():
    pairs = ROOT.parent / "shared" / "data" / "gacn_test26"
    return _crop(pairs / "color_lytro_01_1.png", 150, 200), _crop(pairs / "color_lytro_01_2.png", 150, 200)


@pytest.fixture(scope="module")
def gacn_fusers(shared):
    whole = registry.load_fuser("gacn", str(shared / GACN_WEIGHTS))
    return whole, registry.load_fuser("gacn", str(shared / GACN_WEIGHTS), tile=TILE)


def _whole_image_scales(model, grey):
    """The four SE scales exactly as the whole-image network computes them (one reduce_mean)."""
    feats, inp, scales = [], tf.constant(grey), []
    for conv, se in model.feature_stages:
        c = conv(inp, training=False)
        scales.append(gacn_tiled.excitation(se, tf.reduce_mean(c, axis=[1, 2])))
        feats.append(c * scales[-1][:, None, None, :])
        inp = tf.concat(feats, axis=-1)
    return scales


def test_gacn_geometry_is_exact_given_the_statistics(gacn_fusers, gacn_pair):
    """With the whole image's SE scales fed in, tiles reproduce the maps to float round-off; the
    pre-pass means agree with the whole-image reduce_mean to float32 summation error."""
    whole, tiled = gacn_fusers
    g1, g2 = (grey_input(to_unit(im)) for im in gacn_pair)
    s1, s2 = _whole_image_scales(whole.model, g1), _whole_image_scales(whole.model, g2)
    origin, bgf = whole.decision_maps(*gacn_pair)
    t_origin, t_bgf = tiled._tiled.maps(g1[0, ..., 0], g2[0, ..., 0], s1, s2)
    assert np.abs(t_origin - origin).max() <= 1e-5 and np.abs(t_bgf - bgf).max() <= 1e-5
    pre = tiled._tiled.feature_scales(g1[0, ..., 0])
    assert max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(pre, s1)) <= 1e-5


def test_gacn_tiled_equals_whole(gacn_fusers, gacn_pair):
    """Released weights.  The pre-pass sums the SE means in float64 tile by tile, the whole image in
    one float32 reduction: ~1e-6 apart, which the two sigmoid(1000·x) amplify at near-tie pixels.
    Bound: map within 1e-3, fused image within 1 grey level on ≤ 0.5 % of pixels (the port itself
    matches the original to ±2 levels)."""
    whole, tiled = gacn_fusers
    a, b = gacn_pair
    rw, rt = whole.fuse([a, b]), tiled.fuse([a, b])
    assert np.abs(rt.raw - rw.raw).max() <= 1e-3
    diff = np.abs(rt.fused.astype(int) - rw.fused.astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) <= 5e-3


@pytest.mark.parametrize("cache", ["cached", "recomputed"])
def test_gacn_tiled_calibration(gacn_fusers, shared, cache, monkeypatch):
    """Decision calibration (hard per-pixel selection; reference scales computed once) over three
    stack frames, with the feature cache (the reference's SF kept, each frame's features cached) and
    without it (cache budget 0: everything recomputed per tile).  (Serial fusion is the pair path
    above, applied frame after frame.)"""
    whole, tiled = gacn_fusers
    if cache == "recomputed":
        monkeypatch.setattr(tiled._tiled, "cache_bytes", 0)
    frames = [_crop(shared / "data/stack_v4" / f"V00{i}.jpg", 500, 700) for i in (1, 2, 3)]
    rw, rt = whole.fuse_stream(iter(frames), "calibration"), tiled.fuse_stream(iter(frames), "calibration")
    assert np.abs(rt.raw - rw.raw).max() <= 1e-3
    assert np.mean(np.any(rt.fused != rw.fused, axis=-1)) <= 5e-3
    assert tiled._tiled.cached_bytes == 0  # every cache went with its stream


# ----------------------------------------------------------------------------------------------
# GACN: nested stage windows and the feature cache
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gacn_greys(gacn_pair):
    return [grey_input(to_unit(im))[0, ..., 0] for im in gacn_pair]


def _ring(size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.maximum(np.abs(yy - size // 2), np.abs(xx - size // 2))


def test_gacn_stage_halos_add_up(gacn_fusers, gacn_greys):
    """The three nested windows (features on core + 35, SF on core + 31, decision path on core + 25)
    rest on the stage radii: a flipped grey pixel moves the features exactly FEATURE_HALO = 4 pixels
    away, a bumped feature pixel moves SF exactly SF_HALO = 6 away (both ≥ 50× the noise bound at
    that ring, nothing beyond), and a bumped SF pixel moves ``output_bgf`` no farther than
    DECISION_HALO = 25 (measured 19; its saturated sigmoids hide the outer rings, as for HALO)."""
    tiled = gacn_fusers[1]._tiled
    assert (tiled.FEATURE_HALO, tiled.SF_HALO, tiled.DECISION_HALO) == (4, 6, 25)
    assert tiled.FEATURE_HALO + tiled.SF_HALO + tiled.DECISION_HALO == tiled.HALO
    g1, g2 = (g[3:94, 20:111][None, :, :, None] for g in gacn_greys)  # 91×91, centre (45, 45)
    ring = _ring(91)
    s1, s2 = tiled.feature_scales(g1[0, ..., 0]), tiled.feature_scales(g2[0, ..., 0])
    bumped = g1.copy()
    bumped[0, 45, 45, 0] = 1.0 - bumped[0, 45, 45, 0]
    feats = np.asarray(tiled._features[4](g1, *s1))
    delta = np.abs(np.asarray(tiled._features[4](bumped, *s1)) - feats)[0].max(axis=-1)
    assert _reach(delta > REACHED, (45, 45)) == tiled.FEATURE_HALO
    assert delta[ring == tiled.FEATURE_HALO].max() >= 50 * REACHED

    x = np.random.default_rng(8).normal(size=(1, 91, 91, 64)).astype(np.float32)
    xb = x.copy()
    xb[0, 45, 45, :] += 1.0
    delta = np.abs(np.asarray(spatial_frequency(xb)) - np.asarray(spatial_frequency(x)))[0].max(axis=-1)
    assert _reach(delta > REACHED, (45, 45)) == tiled.SF_HALO
    assert delta[ring == tiled.SF_HALO].max() >= 50 * REACHED

    sf1, sf2 = spatial_frequency(feats), spatial_frequency(tiled._features[4](g2, *s2))
    base = np.asarray(tiled._decide(sf1, sf2, g1, g2)[1])[0, ..., 0]
    sf_bumped = np.array(sf1)
    sf_bumped[0, 45, 45, :] += 1.0
    delta = np.abs(np.asarray(tiled._decide(tf.constant(sf_bumped), sf2, g1, g2)[1])[0, ..., 0] - base)
    assert 15 <= _reach(delta > 1e-6, (45, 45)) <= tiled.DECISION_HALO


def test_gacn_cached_passes_equal_recomputed(gacn_fusers, gacn_greys):
    """With the cache, the pre-pass runs conv i alone on the cached maps (bands, halo 1) and the real
    pass cuts its windows from the cache; a reference's scales handed back to ``maps`` make it keep
    its SF instead.  Same scales in: the maps equal the recomputed ones to float round-off, and the
    cached pre-pass finds the same scales.  (An SF band overlap one pixel short moved the map by 1.0.)"""
    model = gacn_fusers[0].model
    cached, plain = gacn_tiled.TiledGACN(model, TILE), gacn_tiled.TiledGACN(model, TILE, cache_bytes=0)
    g1, g2 = gacn_greys
    s1, s2 = cached.feature_scales(g1), cached.feature_scales(g2)
    r1, r2 = plain.feature_scales(g1), plain.feature_scales(g2)
    assert s1.cache is not None and s2.cache is not None and r1.cache is None and r2.cache is None
    assert max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(s1 + s2, r1 + r2)) <= 1e-6
    want = plain.maps(g1, g2, list(s1), list(s2))
    from_features = cached.maps(g1, g2, list(s1), None)  # g2's cache made (and dropped) inside
    assert s1.cache.sf is None  # a plain list brings no cache
    from_sf = cached.maps(g1, g2, s1, s2)  # both handed back: both keep their SF
    assert s1.cache.sf is not None and s2.cache.sf is not None and not s1.cache.blocks
    again = cached.maps(g1, g2, s1, s2)  # from the stored SF
    for got in (from_features, from_sf, again):
        assert max(float(np.abs(a - b).max()) for a, b in zip(got, want)) <= RAW_NOISE


def test_gacn_feature_cache_budget_and_ownership(gacn_fusers, gacn_greys):
    """The budget bounds what is cached (here: one image's 256 B/pixel); what does not fit is
    recomputed, and a cache only serves the image it was made from.  Released caches give their
    budget back."""
    import gc

    model = gacn_fusers[0].model
    g1, g2 = gacn_greys
    plain = gacn_tiled.TiledGACN(model, TILE, cache_bytes=0)
    one = g1.size * 64 * 4
    tiled = gacn_tiled.TiledGACN(model, TILE, cache_bytes=one)
    s1 = tiled.feature_scales(g1)
    assert s1.cache is not None and tiled.cached_bytes == one
    assert tiled.feature_scales(g2).cache is None  # no room left
    got = tiled.maps(g1, g2, s1)  # g1 from its cache (no room to turn it into SF), g2 recomputed
    assert s1.cache.sf is None and len(s1.cache.blocks) == 4
    want = plain.maps(g1, g2, list(s1))
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, want)) <= RAW_NOISE
    # g1's scales handed in for g2: the cache is g1's and must not serve g2
    swapped, want_swapped = tiled.maps(g2, g1, s1), plain.maps(g2, g1, list(s1))
    assert max(float(np.abs(a - b).max()) for a, b in zip(swapped, want_swapped)) <= RAW_NOISE
    del s1
    gc.collect()
    assert tiled.cached_bytes == 0
    assert gacn_tiled.TiledGACN(model, TILE, cache_bytes=0).feature_scales(g1).cache is None


def test_gacn_bands_cover_rows_once(gacn_fusers):
    """The cached passes' full-width bands: one N×N core's pixels each (at least one row), halo rows
    clipped to the image, every row in exactly one core."""
    tiled = gacn_fusers[1]._tiled
    for height, width in ((H, W), (7, 5000), (40, 16)):
        bands = tiled.bands((height, width), 1)
        rows = np.zeros(height, int)
        for t in bands:
            rows[t.y0 : t.y1] += 1
            assert (t.x0, t.x1, t.wx0, t.wx1) == (0, width, 0, width)
            assert t.wy0 == max(0, t.y0 - 1) and t.wy1 == min(height, t.y1 + 1)
            assert (t.y1 - t.y0) * width <= max(TILE * TILE, width)
        assert (rows == 1).all()


def test_mfifgan_tiled_equals_whole(rng):
    """Random-init generator with one SE block (halo 24, stride-4 aligned), 73×97: the focus map
    overhangs to 76×100 and is cropped back as the original does.  Float tolerance 1e-6: the nine
    (here one) SE means are summed per tile.  Decision maps and fused images: identical."""
    from fusion_tf.inference.mfifgan import MFIFGANFuser
    from fusion_tf.models.mfifgan import build_generator

    tf.keras.utils.set_random_seed(3)
    generator = build_generator(se_blocks=1)
    a, b = (rng.integers(0, 256, (73, 97, 3), dtype=np.uint8) for _ in range(2))
    a[:, :48] = b[:, :48] // 2 + 60  # some structure, so the map is not one flat decision
    whole = MFIFGANFuser(generator=generator).fuse([a, b])
    tiled = MFIFGANFuser(generator=generator, tile=24).fuse([a, b])
    assert tiled.raw.shape == whole.raw.shape == (76, 100)
    assert np.abs(tiled.raw - whole.raw).max() <= 1e-6
    assert np.array_equal(tiled.decision_map, whole.decision_map)
    assert np.array_equal(tiled.fused, whole.fused)


# ----------------------------------------------------------------------------------------------
# The halo is the receptive field: a one-pixel change reaches exactly that far
# ----------------------------------------------------------------------------------------------
#: "the perturbation reached this pixel": |Δ raw| above this.  Raw outputs lie in (−1, 1); a pixel's
#: value may move by a few float32 ulps (~1e-7) when other inputs change, as the kernels' summation
#: order varies with CPU and oneDNN on/off.  1e-5 absorbs that noise 100× over, while the outermost
#: ring inside each halo moves by ≥ 5e-4 (measured, AMD EPYC, oneDNN on and off: mffgan 1.5e-3,
#: gipcgan 3.5e-3, gipcgan-compact 7.6e-2, MFIF-GAN 5e-4) — ≥ 50× the bound, asserted below.
#: (Exact "!=" comparisons broke: with small-scale random weights the edge ring moved by one ulp,
#: and on an AMD CPU with oneDNN on not at all — gipcgan measured 7, not 8.)
REACHED = 1e-5


def test_luma_halos_are_the_receptive_fields(tmp_path):
    """A flipped pixel moves the raw output clearly (> REACHED, the margin asserted) exactly ``halo``
    pixels away, and nowhere beyond it by more than float noise — on any CPU, oneDNN on or off."""
    cases = [("mffgan", None, 5), ("gipcgan", _gipcgan_weights(tmp_path, "paper", 1, unit_gamma=True), 8),
             ("gipcgan-compact", _gipcgan_weights(tmp_path, "count_matched", 2, unit_gamma=True), 4)]
    rng = np.random.default_rng(5)
    near, far = (rng.uniform(0, 255, (41, 41)).astype(np.float32) for _ in range(2))
    yy, xx = np.mgrid[:41, :41]
    ring = np.maximum(np.abs(yy - 20), np.abs(xx - 20))
    for model, weights, halo in cases:
        fuser = registry.load_fuser(model, weights)
        assert fuser.halo == halo
        base = fuser.network(near, far)
        bumped = near.copy()
        bumped[20, 20] = 255.0 - bumped[20, 20]
        delta = np.abs(fuser.network(bumped, far) - base)
        assert _reach(delta > REACHED, (20, 20)) == halo, model
        # the verdict is not a near-tie: the halo's outermost ring moves ≥ 50× the noise bound
        assert delta[ring == halo].max() >= 50 * REACHED, (model, float(delta[ring == halo].max()))


def test_gacn_halo_bounds_the_receptive_field(gacn_fusers, shared):
    """SE scales held fixed (they are global by design): a flipped grey pixel changes output_bgf no
    farther than 35 pixels; the saturated sigmoid(1000·x) hide the outermost rings.  output_bgf lies in
    [0, 1]; "changed" means by > 1e-6 (10× float32 noise): measured per ring (AMD EPYC, oneDNN on and
    off) 1.7e-5 at 24, 7e-6 at 25, ≤ 7.2e-7 from 26 on, ≤ 6e-8 from 30, 0 from 34 — so the reach is
    25 or 26 on any CPU, and ≥ 24 is asserted with a 17× margin.  (Exact "!=" saw ulp-sized changes up
    to ring 33, too close to call for a portable lower bound.)"""
    tiled = gacn_fusers[1]._tiled
    assert tiled.HALO == 35
    pairs = shared / "data" / "gacn_test26"
    g1, g2 = (grey_input(to_unit(_crop(pairs / f"color_lytro_01_{i}.png", 200, 300, 91, 91))) for i in (1, 2))
    s1, s2 = tiled.feature_scales(g1[0, ..., 0]), tiled.feature_scales(g2[0, ..., 0])

    def bgf(x):
        f1, f2 = tiled._features[4](x, *s1), tiled._features[4](g2, *s2)
        return np.asarray(tiled._decide(spatial_frequency(f1), spatial_frequency(f2), x, g2)[1])[0, ..., 0]

    bumped = g1.copy()
    bumped[0, 45, 45, 0] = 1.0 - bumped[0, 45, 45, 0]
    assert 24 <= _reach(np.abs(bgf(bumped) - bgf(g1)) > 1e-6, (45, 45)) <= tiled.HALO


def test_mfifgan_halo_bounds_the_receptive_field():
    """One SE block: 15 + 8 = 23 pixels, rounded to the stride: 24.  Scales fixed; a pixel at each
    phase of the stride-4 grid changes the raw map (by > REACHED) no farther than 23 pixels, and at
    some phase exactly that far.  Randomised weights: at the default initialisation the map is
    0.5 ± 1e-3 and the edge rings move by 2–4e-7, a few ulps (here ≥ 5e-4)."""
    from fusion_tf.models.mfifgan import build_generator, fold_generator

    tf.keras.utils.set_random_seed(4)
    generator = build_generator(se_blocks=1)
    _randomise(generator, 4, unit_gamma=True)
    tiled = TiledMFIFGAN(fold_generator(generator), 24)
    assert tiled.halo == 24
    rng = np.random.default_rng(6)
    a, b = (rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32) for _ in range(2))
    scales = tiled.scales(a[0], b[0])
    base = np.asarray(tiled._full(a, b, *scales))[0, ..., 0]
    reaches = []
    for c in (30, 31, 32, 33):
        bumped = a.copy()
        bumped[0, c, c, :] = -bumped[0, c, c, :]
        delta = np.abs(np.asarray(tiled._full(bumped, b, *scales))[0, ..., 0] - base)
        reaches.append(_reach(delta > REACHED, (c, c)))
    assert max(reaches) == 23 and min(reaches) >= 20


# ----------------------------------------------------------------------------------------------
# Bounded memory: the network only ever sees one window
# ----------------------------------------------------------------------------------------------
def test_network_never_sees_more_than_one_window(lytro_pair):
    """Feature maps scale with the network's input; with tiles that input is at most (N + 2h)²
    whatever the image size (here 5× a window's area)."""
    fuser = registry.load_fuser("mffgan", tile=TILE)
    seen, run = [], fuser._run
    fuser._run = lambda a, b: (seen.append(a.shape[1] * a.shape[2]), run(a, b))[1]
    big = [np.tile(im, (2, 2, 1)) for im in lytro_pair]  # 194×262
    fuser.fuse(big)
    assert max(seen) <= (TILE + 2 * fuser.halo) ** 2 < big[0].shape[0] * big[0].shape[1] / 5


def test_tiles_run_on_the_onnx_backend(lytro_pair, tmp_path, monkeypatch):
    """tile= composes with backend=: every window goes through the ONNX network (tiled == whole)."""
    for module in ("onnxruntime", "tf2onnx"):
        pytest.importorskip(module, reason=f"optional extra 'onnx' not installed ({module})")
    monkeypatch.setenv("FUSION_TF_CACHE", str(tmp_path / "cache"))
    whole = registry.load_fuser("mffgan", backend="onnxruntime").fuse(list(lytro_pair))
    tiled = registry.load_fuser("mffgan", backend="onnxruntime", tile=TILE)
    from fusion_tf.inference.backends import OnnxNetwork

    assert isinstance(tiled._run, OnnxNetwork)
    _assert_tiled_matches(tiled.fuse(list(lytro_pair)), whole)


def test_cli_tile_flag(tmp_path, lytro_pair, capsys):
    from PIL import Image

    paths = []
    for name, im in zip("ab", lytro_pair):
        Image.fromarray(im).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    assert main(["fuse", *paths, "-o", str(tmp_path / "w.png")]) == 0
    assert main(["fuse", *paths, "--tile", "32", "-o", str(tmp_path / "t.png")]) == 0
    _assert_fused_close(read_image(tmp_path / "t.png"), read_image(tmp_path / "w.png"))
    assert main(["fuse", *paths, "--tile", "4", "-o", str(tmp_path / "bad.png")]) == 2
    assert "--tile" in capsys.readouterr().err and not (tmp_path / "bad.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mffgan", "gacn"])
def test_4000x3000_pair_peak_rss_under_3gb(model):
    """The benchmark's measurement: a fresh process fuses a synthetic 4000×3000 colour pair with
    --tile 512; its peak RSS (ru_maxrss) must stay under 3 GB."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_tiling.py"), "--only", f"{model}-pair",
                          "--tile", "512", "--untiled", "none"], check=True, capture_output=True, text=True).stdout
    import json

    row = json.loads(out.strip().splitlines()[-1])
    assert row["tile"] == 512 and row["peak_rss_gib"] * 2**30 < 3e9


def test_tile_cache_option(tmp_path, lytro_pair, capsys):
    """``--tile-cache GIB`` sets GACN's feature-cache budget (0: recompute per tile); the output stays
    the tiled output, and every misuse is one line and exit code 2, before anything loads."""
    from PIL import Image

    from fusion_tf import api

    assert api.load_fuser("gacn", tile=32, tile_cache=0.5)._tiled.cache_bytes == 1 << 29
    assert api.load_fuser("gacn", tile=32)._tiled.cache_bytes == gacn_tiled.FEATURE_CACHE_BYTES
    paths = []
    for name, im in zip("ab", lytro_pair):
        Image.fromarray(im).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    gacn = ["fuse", "--model", "gacn", *paths, "--tile", "32"]
    assert main([*gacn, "-o", str(tmp_path / "cached.png")]) == 0
    assert main([*gacn, "--tile-cache", "0", "-o", str(tmp_path / "recomputed.png")]) == 0
    _assert_fused_close(read_image(tmp_path / "recomputed.png"), read_image(tmp_path / "cached.png"))
    capsys.readouterr()
    for bad, says in [(["fuse", "--model", "gacn", *paths, "--tile", "none", "--tile-cache", "1"], "goes with --tile"),
                      (["fuse", "--model", "mffgan", *paths, "--tile", "32", "--tile-cache", "1"], "--tile-cache"),
                      ([*gacn, "--tile-cache", "1", "--backend", "onnxruntime"], "TF backend"),
                      ([*gacn, "--tile-cache", "-1"], "--tile-cache"),
                      ([*gacn, "--tile-cache", "nan"], "--tile-cache")]:
        code = main([*bad, "-o", str(tmp_path / "bad.png")])
        err = capsys.readouterr().err
        assert code == 2 and says in err and "Traceback" not in err, (bad, err)
        assert not (tmp_path / "bad.png").exists()
