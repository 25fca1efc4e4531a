"""Golden values of every metric.

* Spec §5.0 canonical pair (Lytro 01, F = round((A + B)/2)): values obtained with the original
  MATLAB code under GNU Octave and an independent NumPy implementation (tolerance 1e-6).
* Metrics without a §5.0 value: closed forms on small constructed images, derived by hand from
  the definitions (never values read back from this implementation).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from fusion_tf import metrics as M

# spec metrics.md §5.0
CANONICAL = {
    "qg_toolbox": 0.533288, "qabf": 0.614591, "qmi": 0.832011, "mi": 3.989639, "qncie": 0.819906,
    "te": 0.364461, "te_cvejic": 22.353622, "qy": 0.853985, "qy_onepass": 0.853985, "qcb": 0.642914,
    "qcv": 47.288218, "qw": 0.893172, "qe": 0.687580, "qp": 0.699620, "qm": 0.433370, "qsf": -0.392490,
    "scd": 0.377018, "en": 6.909983, "sd": 36.183711, "sd_liu2024": 33.065827, "sf": 9.201797,
    "sf_meandiff": 9.210658, "ag": 3.720115, "ag_liu2024": 3.720115, "ag_vifb": 3.415376,
}


@pytest.fixture(scope="module")
def canonical(shared):
    pairs = shared / "data" / "lytro" / "pairs"
    a = M.rgb2gray(np.asarray(Image.open(pairs / "lytro-01-A.jpg")))
    b = M.rgb2gray(np.asarray(Image.open(pairs / "lytro-01-B.jpg")))
    return a, b, M.matlab_round((a + b) / 2)


@pytest.mark.parametrize("mid", sorted(CANONICAL))
def test_canonical_pair(canonical, mid):
    a, b, f = canonical
    assert M.METRICS[mid](a, b, f) == pytest.approx(CANONICAL[mid], abs=1e-6)


# --------------------------------------------------------------------------- constructed images
def _noise(seed, shape=(64, 64)):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float64)


STRIPES = np.tile(np.array([0.0, 255.0]), (6, 5))  # 6 x 10, vertical stripes 0/255
HALF = np.repeat(np.array([[0.0], [255.0]]), 4, axis=0).repeat(8, axis=1)  # rows 0..3 = 0, 4..7 = 255


def test_statistics_closed_forms():
    M_, N = STRIPES.shape
    assert M.en(None, None, HALF) == pytest.approx(1.0)
    assert M.en(None, None, np.arange(256.0).reshape(16, 16)) == pytest.approx(8.0)
    assert M.sd(None, None, HALF) == pytest.approx(127.5)
    assert M.msd(None, None, HALF) == pytest.approx(0.25)  # (+-1/2)^2
    # horizontal differences are all 255, vertical ones 0
    assert M.sf(None, None, STRIPES) == pytest.approx(255 * math.sqrt((N - 1) / N))
    assert M.sf_meandiff(None, None, STRIPES) == pytest.approx(255.0)
    assert M.ag(None, None, STRIPES) == pytest.approx(255 / math.sqrt(2) * (N - 1) / N)
    # MATLAB gradient: central differences cancel on alternating stripes, the two border columns are +-255
    assert M.ag_vifb(None, None, STRIPES) == pytest.approx(2 * M_ * 255 / math.sqrt(2) / ((M_ - 1) * (N - 1)))
    assert M.gld(None, None, STRIPES) == pytest.approx(M_ * (N - 1) * 255 / ((M_ - 1) * (N - 1)))
    # sample std of each column of HALF (four 0s and four 255s): 255/2 * sqrt(8/7)
    assert M.sd_liu2024(None, None, HALF) == pytest.approx(127.5 * math.sqrt(8 / 7))


def test_lif_closed_form():
    # membership sin(pi/2 (1 - F/Fmax)): F = Fmax -> 0, F = 0 -> 1, both fully crisp
    assert M.lif(None, None, HALF) == pytest.approx(0.0, abs=1e-15)
    f = np.where(HALF > 0, 255.0, 85.0)  # 85 = Fmax/3 -> membership sin(pi/3)
    assert M.lif(None, None, f) == pytest.approx(2 * 0.5 * (1 - math.sin(math.pi / 3)))


def test_correlation_metrics_closed_forms():
    a = _noise(1)
    assert M.cc(a, 255 - a, a) == pytest.approx(0.0, abs=1e-12)  # r(A,F) = 1, r(B,F) = -1
    # exactly orthogonal zero-mean patterns: F - B = A and F - A = B
    r = np.tile(np.array([1.0, -1.0, 1.0, -1.0]), (4, 1))
    c = r.T.copy()
    assert float((r * c).sum()) == 0.0
    assert M.scd(r, c, r + c) == pytest.approx(2.0)


def test_psnr_closed_form():
    a = np.zeros((8, 8))
    b = np.full((8, 8), 20.0)
    f = np.full((8, 8), 10.0)
    assert M.psnr(a, b, f) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert M.psnr(a, a, a) == math.inf


def test_information_closed_forms_on_binary_identity():
    # A = B = F with two equiprobable levels: H = 1 bit, I = H, joint mass 1/2 on the diagonal
    a = HALF
    assert M.mi(a, a, a) == pytest.approx(2 * math.log(2))
    assert M.qmi(a, a, a) == pytest.approx(2.0)
    for q, metric in ((0.43137, M.te), (1.85, M.te_cvejic)):
        # Tsallis: sum over the two diagonal cells of 0.5^q / (0.5 * 0.5)^(q - 1)
        t = (1 - 2 * 0.5 ** q / 0.25 ** (q - 1)) / (1 - q)
        expect = 2 * t / (1 + 1 + t) if metric is M.te else 2 * t
        assert metric(a, a, a) == pytest.approx(expect)
    # NCC = I/8 = 1/8 for every pair; eigenvalues of [[1, c, c], [c, 1, c], [c, c, 1]]: 1 + 2c, 1 - c (x2)
    c = 1 / 8
    r = np.array([1 + 2 * c, 1 - c, 1 - c])
    assert M.qncie(a, a, a) == pytest.approx(1 + float((r / 3 * np.log2(r / 3)).sum()) / 8)


def test_qabf_identity_is_the_sigmoid_ceiling():
    a = _noise(2)
    # G = 1 and orientation term 1 everywhere: Q = product of the two sigmoids at (1 - sigma)
    toolbox = 1 / (1 + math.exp(-10 * 0.5)) / (1 + math.exp(-20 * 0.25))
    paper = 0.9994 / (1 + math.exp(-15 * 0.5)) * 0.9879 / (1 + math.exp(-22 * 0.2))
    assert M.qg_toolbox(a, a, a) == pytest.approx(toolbox, abs=1e-12)
    assert M.qabf(a, a, a) == pytest.approx(paper, abs=1e-12)


@pytest.mark.parametrize("mid", ["qy", "qy_onepass", "qc", "qs", "qw", "qe", "qcb", "ssim", "ms_ssim"])
def test_similarity_metrics_are_one_for_identity(mid):
    a = _noise(3, (176, 176))
    assert M.METRICS[mid](a, a, a) == pytest.approx(1.0, abs=1e-9)


def test_identity_closed_forms_other_metrics():
    a = _noise(4, (64, 64))
    assert M.qcv(a, a, a) == pytest.approx(0.0, abs=1e-20)  # no difference image
    assert M.qsf(a, a, a) == pytest.approx(0.0, abs=1e-12)  # SF_F = SF_R
    assert M.qm(a, a, a) == pytest.approx(3.0)  # EP = 3 everywhere: Q_l = 3, 3^(2/3) 3^(1/3)
    for mid in ("fmi_edge", "fmi_dct", "fmi_pixel"):  # every window equal
        assert M.METRICS[mid](a, a, a) == pytest.approx(1.0)
    assert M.vif_sum(a, a, a) == pytest.approx(2.0, abs=1e-6)
    assert M.viff(a, a, a) == pytest.approx(1.0, abs=1e-6)


def test_ssim_of_constant_images_is_the_luminance_term():
    a, f = np.full((32, 32), 100.0), np.full((32, 32), 140.0)
    c1 = (0.01 * 255) ** 2
    assert M.ssim(a, a, f) == pytest.approx((2 * 100 * 140 + c1) / (100 ** 2 + 140 ** 2 + c1))


def test_ms_ssim_needs_five_scales():
    a = _noise(5, (160, 160))
    assert math.isnan(M.ms_ssim(a, a, a))
