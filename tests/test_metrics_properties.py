"""Basic properties of the metrics: A/B symmetry, ranges, conventions, registry API, and the
vectorised fast-FMI against a literal per-window port of the published MATLAB loops."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fusion_tf import metrics as M
from fusion_tf.metrics.feature_mi import fmi, matlab_edge_sobel


@pytest.fixture(scope="module")
def triple(shared):
    """A 192 x 192 crop of Lytro 01 (>= 176 px so MS-SSIM has five scales) and a mixed fusion."""
    pairs = shared / "data" / "lytro" / "pairs"
    a = M.rgb2gray(np.asarray(Image.open(pairs / "lytro-01-A.jpg")))[150:342, 180:372]
    b = M.rgb2gray(np.asarray(Image.open(pairs / "lytro-01-B.jpg")))[150:342, 180:372]
    mask = np.arange(192)[None, :] < 96
    f = np.where(mask, a, M.matlab_round(0.3 * a + 0.7 * b))
    return a, b, f


# FMI (B's equality test) and Q_C (clip of the map value) are not symmetric by construction.
ASYMMETRIC = {"qc", "fmi_edge", "fmi_dct", "fmi_pixel"}


@pytest.mark.parametrize("mid", [k for k in M.METRICS if M.NEEDS_SOURCES[k] and k not in ASYMMETRIC])
def test_symmetric_in_the_sources(triple, mid):
    a, b, f = triple
    tol = 1e-6 if mid in ("qabf", "qg_toolbox") else 1e-9  # 1e-5 zero guards of Q^AB/F
    assert M.METRICS[mid](b, a, f) == pytest.approx(M.METRICS[mid](a, b, f), rel=tol, abs=tol)


RANGES = {
    "en": (0, 8), "lif": (0, 1), "msd": (0, 0.25), "qmi": (0, 2), "qncie": (0, 1), "qabf": (0, 1),
    "qg_toolbox": (0, 1), "qy": (0, 1), "qy_onepass": (0, 1), "qcb": (0, 1), "qw": (0, 1), "qs": (0, 1),
    "qe": (0, 1), "qc": (0, 1), "qp": (0, 1), "ssim": (-1, 1), "ms_ssim": (0, 1), "fmi_edge": (0, 1),
    "fmi_dct": (0, 1), "fmi_pixel": (0, 1), "qm": (0, 3), "cc": (-1, 1), "scd": (-2, 2), "qcv": (0, math.inf),
    "viff": (0, math.inf), "vif_sum": (0, math.inf), "te": (0, math.inf), "mi": (0, math.inf),
}


def test_values_in_range(triple):
    a, b, f = triple
    values = M.compute(list(RANGES), a, b, f)
    for mid, (lo, hi) in RANGES.items():
        assert lo <= values[mid] <= hi, (mid, values[mid])


def test_better_fusion_scores_better(triple):
    """Keeping source A's pixels must beat a blurred average on every source-referenced metric,
    in the direction INFO gives (a sanity check of higher_is_better)."""
    from scipy.ndimage import uniform_filter

    a, b, _ = triple
    blurred = M.matlab_round(uniform_filter((a + b) / 2, 9))
    for mid in ("qabf", "qg_toolbox", "qmi", "qncie", "qcb", "qy", "qw", "qe", "qp", "qcv", "viff"):
        good, bad = M.METRICS[mid](a, b, a), M.METRICS[mid](a, b, blurred)
        assert (good > bad) == M.HIGHER_IS_BETTER[mid], (mid, good, bad)


# --------------------------------------------------------------------------- MATLAB conventions
def test_matlab_round_is_half_away_from_zero():
    np.testing.assert_array_equal(M.matlab_round([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999]), [1, 2, 3, -1, -3, 2])


def test_rgb2gray_uses_matlab_coefficients_and_rounding():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 31], [128, 128, 128]]], dtype=np.uint8)
    w = (0.298936021293775, 0.587043074451121, 0.114020904255103)
    expect = [math.floor(w[0] * r + w[1] * g + w[2] * b_ + 0.5) for r, g, b_ in rgb[0].astype(float)]
    np.testing.assert_array_equal(M.rgb2gray(rgb)[0], expect)
    assert M.rgb2gray(rgb).dtype == np.float64
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(M.rgb2gray(grey), grey)


def test_rgb2gray_differs_from_pil_on_some_colours():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    ours = M.rgb2gray(rgb)
    pil = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64)
    diff = np.abs(ours - pil)
    assert diff.max() == 1 and 0 < (diff > 0).mean() < 0.05


def test_normalize1():
    x = np.array([[10.0, 20.0], [30.0, 40.0]])
    np.testing.assert_array_equal(M.normalize1(x), [[0, 85], [170, 255]])
    np.testing.assert_array_equal(M.normalize1(np.zeros((2, 2))), np.zeros((2, 2)))


def test_colour_inputs_are_converted_before_every_metric(triple):
    a, b, f = (np.repeat(x[..., None], 3, axis=2).astype(np.uint8) for x in triple)
    got = M.compute(["qabf", "qcb", "en"], a, b, f)
    want = M.compute(["qabf", "qcb", "en"], *triple)
    assert got == pytest.approx(want, rel=1e-12)


# --------------------------------------------------------------------------- registry API
def test_registry_and_metadata():
    required = ("en sd sf ag cc scd mi qmi te qncie qabf qg_toolbox qy qcb qcv qp qe qw qs qc qm "
                "fmi_edge fmi_dct fmi_pixel viff ssim ms_ssim psnr lif msd gld").split()
    assert set(required) <= set(M.DEFAULT_METRICS) <= set(M.METRICS)
    for mid in M.METRICS:
        assert M.METRICS[mid].__doc__, mid
    assert not M.HIGHER_IS_BETTER["qcv"] and not M.HIGHER_IS_BETTER["lif"] and M.HIGHER_IS_BETTER["qabf"]
    assert not M.NEEDS_SOURCES["en"] and M.NEEDS_SOURCES["qcb"]
    with pytest.raises(ValueError, match="unknown metric.*valid: en"):
        M.resolve("en,nope")
    assert M.resolve("qabf, en") == ["qabf", "en"]


def test_more_than_two_sources():
    f = np.random.default_rng(1).integers(0, 256, (32, 32)).astype(np.float64)
    srcs = [f, f, f]
    assert set(M.compute_sources(["en", "sd"], srcs, f)) == {"en", "sd"}
    with pytest.raises(ValueError, match="defined for 2 source images"):
        M.compute_sources(["en", "qabf"], srcs, f)


def test_size_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match="sizes differ"):
        M.qabf(np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 9)))


def test_metrics_package_does_not_import_tensorflow():
    code = "import sys, fusion_tf.metrics, fusion_tf.evaluation.command; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- fast-FMI vs a literal port
def _lr_sum(v):
    total = 0.0
    for x in v:
        total += float(x)
    return total


def _fmi_literal(ima, imb, imf, compare_normalised=False):
    """Window-by-window translation of Haghighat's fmi.m (features given), as an independent
    reference for the vectorised implementation."""
    def norm(x):
        lo, hi = x.min(), x.max()
        return np.ones_like(x) if hi == lo else (x - lo) / (hi - lo)

    def pair(s, f):
        s, f = norm(s), norm(f)
        sp, fp = s / s.sum(), f / f.sum()
        sc, fc = np.cumsum(sp), np.cumsum(fp)
        # MATLAB's mean: left-to-right sum / 9 (nine 1/9 sum to 1 + 2^-52, so constant pairs get c = 1)
        st, ft = sp - _lr_sum(sp) / sp.size, fp - _lr_sum(fp) / fp.size
        num = float((st * ft).sum())
        c = 0.0 if num == 0 else num / math.sqrt(float((st * st).sum() * (ft * ft).sum()))
        i = np.arange(1, 10)
        s_sd = math.sqrt(max(float((i * i * sp).sum() - (i * sp).sum() ** 2), 0.0))
        f_sd = math.sqrt(max(float((i * i * fp).sum() - (i * fp).sum() ** 2), 0.0))

        def bound(u, v):
            return min(u, v) if c >= 0 else max(u + v - 1, 0.0)

        k = 0.0
        if (c != 0) and s_sd != 0 and f_sd != 0:
            cov = sum(bound(fc[p], sc[q]) - fc[p] * sc[q] for p in range(9) for q in range(9))
            k = c / (cov / (f_sd * s_sd))
        fz, sz = np.concatenate([[0.0], fc]), np.concatenate([[0.0], sc])
        hj = 0.0
        for p in range(1, 10):
            for q in range(1, 10):
                mass = (bound(fz[p], sz[q]) - (bound(fz[p - 1], sz[q]) if p > 1 else 0.0)
                        - (bound(fz[p], sz[q - 1]) if q > 1 else 0.0)
                        + (bound(fz[p - 1], sz[q - 1]) if p > 1 and q > 1 else 0.0))
                jp = k * mass + (1 - k) * fp[p - 1] * sp[q - 1]
                if jp != 0:
                    hj -= jp * math.log2(abs(jp))
        hs = -sum(x * math.log2(x) for x in sp if x > 0)
        hf = -sum(x * math.log2(x) for x in fp if x > 0)
        mi = hs + hf - hj
        return 0.0 if mi == 0 else 2 * mi / (hs + hf)

    m, n = ima.shape
    vals = []
    for p in range(1, m - 1):
        for q in range(1, n - 1):
            a_, b_, f_ = (x[p - 1:p + 2, q - 1:q + 2].T.ravel() for x in (ima, imb, imf))  # column-major
            fa = 1.0 if np.array_equal(a_, f_) else pair(a_, f_)
            f_seen = f_ if (np.array_equal(a_, f_) or not compare_normalised) else norm(f_)
            fb = 1.0 if np.array_equal(b_, f_seen) else pair(b_, f_)
            vals.append((fa + fb) / 2)
    return float(np.mean(vals))


@pytest.mark.parametrize("feature", ["none", "edge", "dct"])
@pytest.mark.parametrize("quirk", [False, True])
def test_vectorised_fmi_matches_literal_port(triple, feature, quirk):
    a, b, _ = (x[40:64, 60:84] for x in triple)
    f = np.where(np.arange(24)[None, :] < 12, a, b)
    f[5:9, 14:20] = M.matlab_round((a[5:9, 14:20] + b[5:9, 14:20]) / 2)
    feats = {"none": lambda x: x, "edge": matlab_edge_sobel,
             "dct": lambda x: __import__("scipy.fft", fromlist=["dctn"]).dctn(x, norm="ortho")}[feature]
    want = _fmi_literal(*(feats(x) for x in (a, b, f)), compare_normalised=quirk)
    assert fmi(a, b, f, feature, compare_normalised=quirk) == pytest.approx(want, abs=1e-12)


def test_matlab_edge_sobel_thins_a_step():
    x = np.zeros((9, 9))
    x[:, 5:] = 200.0
    e = matlab_edge_sobel(x)
    # a vertical step gives equal gradients b on columns 4 and 5 (above the 4 * mean(b) cutoff); the
    # non-maximum test b(c-1) <= b(c) > b(c+1) fails on column 4 (tie on the right) and keeps column 5
    np.testing.assert_array_equal(np.nonzero(e.any(axis=0))[0], [5])
    assert e[:, 5].all()


def test_variants_reachable_by_keyword(triple):
    a, b, f = triple
    assert M.sd(a, b, f, variant="liu2024") == M.sd_liu2024(a, b, f)
    assert M.sf(a, b, f, variant="meandiff") == M.sf_meandiff(a, b, f)
    assert M.ag(a, b, f, variant="vifb") == M.ag_vifb(a, b, f)
    assert M.qy(a, b, f, two_pass=False) == M.qy_onepass(a, b, f)
    assert M.te(a, b, f, q=1.85) != M.te(a, b, f)
    paper_constants = M.qabf(a, b, f)
    assert M.qg_toolbox(a, b, f, constants=(0.9994, -15.0, 0.5, 0.9879, -22.0, 0.8)) != paper_constants
    assert 0 <= M.qc(a, b, f, clip_weight=True) <= 1
    with pytest.raises(ValueError, match="unknown SD variant"):
        M.sd(a, b, f, variant="nope")
