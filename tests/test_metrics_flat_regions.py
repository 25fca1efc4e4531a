"""Metrics on images with flat (constant) regions (issue #16).

Expected values here never come from fusion_tf itself:

* fast-FMI is compared with ``_fmi_m``, a slow window-by-window transcription of the authors'
  ``fmi.m`` (mhaghighat/fmi) written for this test with MATLAB's order of operations: ``x(:)`` is
  column-major, ``sum`` adds left to right, ``sum(sum(X))`` sums the columns first, ``mean`` is
  ``sum / n``, and the fused window variable is overwritten by its normalised version in the A pass
  and reused in the B pass. Plus scalar cases on 3 x 3 images (one window) derived by hand.
* Q_Y (stable variant) is compared with local statistics computed in exact rational arithmetic
  (weights normalised exactly, so a constant window has variance exactly 0), plus a hand case.
* Q_E's window sums are compared with exact rational sums.
"""

from __future__ import annotations

import cmath
import math
from fractions import Fraction

import numpy as np
import pytest

from fusion_tf import metrics as M
from fusion_tf.metrics.common import box_sum_direct, box_sum_valid, gauss1d
from fusion_tf.metrics.feature_mi import fmi, matlab_edge_sobel
from fusion_tf.metrics.structural import qe


# --------------------------------------------------------------------------- fmi.m, transcribed
def _msum(values) -> float:
    """MATLAB ``sum`` of a short vector: strictly left to right."""
    total = 0.0
    for v in values:
        total += v
    return total


def _col_major(win: np.ndarray) -> list[float]:
    return [float(v) for v in win.T.ravel()]


def _normalise(win: list[float]) -> list[float]:
    lo, hi = min(win), max(win)
    if hi == lo:
        return [1.0] * len(win)
    return [(v - lo) / (hi - lo) for v in win]


def _pdf(win: list[float], w: int) -> list[float]:
    # sum(sum(X)): column sums (top to bottom), then their sum left to right
    total = _msum(_msum(win[j * w:(j + 1) * w]) for j in range(w))
    return [v / total for v in win]


def _xlog2x(p: float) -> float:
    """real(-p .* log2(p)) as MATLAB evaluates it (complex log for p < 0)."""
    return (-p * (cmath.log(p) / math.log(2.0))).real if p < 0 else -p * math.log2(p)


def _nfmi_pair(s: list[float], f: list[float], w: int) -> float:
    """One window pair of fmi.m, both windows already normalised."""
    l = len(s)
    sp, fp = _pdf(s, w), _pdf(f, w)
    sc, fc = [sp[0]], [fp[0]]
    for i in range(1, l):
        sc.append(sp[i] + sc[i - 1])
        fc.append(fp[i] + fc[i - 1])
    s_mean, f_mean = _msum(sp) / l, _msum(fp) / l
    st = [v - s_mean for v in sp]
    ft = [v - f_mean for v in fp]
    num = _msum(x * y for x, y in zip(st, ft))
    c = 0.0 if num == 0 else num / math.sqrt(_msum(x * x for x in st) * _msum(y * y for y in ft))
    e_s = e2_s = e_f = e2_f = 0.0
    for i in range(1, l + 1):
        e_s += i * sp[i - 1]
        e2_s += i ** 2 * sp[i - 1]
        e_f += i * fp[i - 1]
        e2_f += i ** 2 * fp[i - 1]
    assert e2_s - e_s ** 2 >= 0 and e2_f - e_f ** 2 >= 0  # MATLAB would go complex; not built here
    s_sd, f_sd = math.sqrt(e2_s - e_s ** 2), math.sqrt(e2_f - e_f ** 2)

    if c >= 0:
        def bound(x, y):  # Frechet upper bound as written in fmi.m
            return 0.5 * (x + y - abs(x - y))
        mix = 0.0
        if not (c == 0 or s_sd == 0 or f_sd == 0):
            cov = 0.0
            for i in range(l):
                for j in range(l):
                    cov = cov + bound(fc[i], sc[j]) - fc[i] * sc[j]
            mix = c / (cov / (f_sd * s_sd))
    else:
        def bound(x, y):  # Frechet lower bound as written in fmi.m
            return 0.5 * (x + y - 1 + abs(x + y - 1))
        mix = 0.0
        if not (s_sd == 0 or f_sd == 0):
            cov = 0.0
            for i in range(l):
                for j in range(l):
                    cov = cov + bound(fc[i], sc[j]) - fc[i] * sc[j]
            mix = c / (cov / (f_sd * s_sd))

    def cell(i, j):  # mass of the bound in cell (i, j), differences written out as in fmi.m
        if i == 0 and j == 0:
            m = bound(fc[0], sc[0])
        elif j == 0:
            m = bound(fc[i], sc[0]) - bound(fc[i - 1], sc[0])
        elif i == 0:
            m = bound(fc[0], sc[j]) - bound(fc[0], sc[j - 1])
        else:
            m = (bound(fc[i], sc[j]) - bound(fc[i - 1], sc[j]) - bound(fc[i], sc[j - 1])
                 + bound(fc[i - 1], sc[j - 1]))
        return mix * m + (1 - mix) * fp[i] * sp[j]

    order = [(0, 0)] + [(i, 0) for i in range(1, l)] + [(0, j) for j in range(1, l)] \
        + [(i, j) for i in range(1, l) for j in range(1, l)]
    h_joint = 0.0
    for i, j in order:
        p = cell(i, j)
        if p != 0:
            h_joint = h_joint + _xlog2x(p)
    h_s = _msum(-v * math.log2(v) for v in sp if v != 0)
    h_f = _msum(-v * math.log2(v) for v in fp if v != 0)
    mi = h_s + h_f - h_joint
    return 0.0 if mi == 0 else 2 * mi / (h_s + h_f)


def _fmi_m(fa: np.ndarray, fb: np.ndarray, ff: np.ndarray, w: int = 3,
           compare_normalised: bool = True) -> float:
    """fmi.m's window loop on feature images; ``compare_normalised=False`` makes the B pass see
    the raw fused window instead of the one the A pass overwrote."""
    r = w // 2
    rows, cols = fa.shape
    scores = []
    for q in range(r, cols - r):  # mean2 sums fmi_map(:), i.e. column by column
        for p in range(r, rows - r):
            a_, b_, f_raw = (_col_major(x[p - r:p + r + 1, q - r:q + r + 1]) for x in (fa, fb, ff))
            f_ = f_raw
            if a_ == f_:
                s_af = 1.0
            else:
                f_ = _normalise(f_)  # the A pass overwrites fSub
                s_af = _nfmi_pair(_normalise(a_), f_, w)
            f_seen = f_ if compare_normalised else f_raw
            if b_ == f_seen:
                s_bf = 1.0
            else:
                s_bf = _nfmi_pair(_normalise(b_), _normalise(f_seen), w)
            scores.append((s_af + s_bf) / 2)
    return _msum(scores) / len(scores)


def test_matlab_sum_of_nine_ninths_is_not_one():
    """The arithmetic fact the constant-window rule rests on (w = 3, 5, 7)."""
    assert _msum([1 / 9] * 9) == 1 + 2 ** -52
    assert _msum([1 / 25] * 25) == 1 + 2 ** -52
    assert _msum([1 / 49] * 49) == 1 + 3 * 2 ** -52
    d = 1 / 9 - _msum([1 / 9] * 9) / 9
    assert d != 0 and _msum([d * d] * 9) / math.sqrt(_msum([d * d] * 9) ** 2) == 1.0  # c = 1


# --------------------------------------------------------------------------- hand-derived cases
def _full(v, n=3):
    return np.full((n, n), float(v))


DELTA = np.zeros((3, 3))
DELTA[1, 1] = 9.0  # one bright pixel: normalised PDF is a single point (entropy 0)
RAMP = np.arange(9.0).reshape(3, 3)


@pytest.mark.parametrize("case, a, b, f, want_faithful, want_raw", [
    # A, B and F constant, F at another level: both pairs are constant pairs, c = 1 (the mean's
    # residue d != 0 is the same in both PDFs), the Frechet upper bound of two uniform PDFs has
    # correlation 1 (Hoeffding: sum min(i, j)/9 - ij/81 = 20/3 = the variance), so phi = 1, the
    # joint PDF is diag(1/9), MI = log2 9 = each entropy, FMI = 1.
    ("all constant", _full(10), _full(10), _full(200), 1.0, 1.0),
    # B == F raw, F a one-point window. A pass: A constant vs a one-point PDF: sd_F = 0, so
    # phi = 0, the joint PDF is the product, H_joint = log2 9 = H_A + 0, MI = 0 -> 0. B pass,
    # authors' code: B (0/9) differs from F normalised (0/1), the pair of identical one-point
    # PDFs has sd = 0 and entropy 0, MI = 0 -> 0. Comparing with raw F: equal -> 1.
    ("one-point fused window", _full(5), DELTA, DELTA, 0.0, 0.5),
    # B == F raw, a ramp. A pass: constant vs ramp, |c| ~ 1e-16 -> ~0. B pass: normalised windows
    # identical -> c = 1, comonotone joint PDF = diag(PDF), MI = H -> 1 (or 1 directly with raw F).
    ("B equals F raw", _full(5), RAMP, RAMP, 0.5, 0.5),
    # Textured sources, constant fused image: each pair is constant vs non-constant -> ~0.
    ("constant fused", RAMP, RAMP[::-1], _full(128), 0.0, 0.0),
    # A == F raw scores 1; B and F constant at different levels: a constant pair -> 1.
    ("A equals F, both constant", _full(7), _full(3), _full(7), 1.0, 1.0),
])
def test_fmi_pixel_hand_cases(case, a, b, f, want_faithful, want_raw):
    # ~1e-14 is the round-off of the reference's 81-cell entropy sum (fmi.m itself gives
    # 1 + 1.04e-14 for the first case)
    assert M.fmi_pixel(a, b, f) == pytest.approx(want_faithful, abs=1e-13), case
    assert M.fmi_pixel(a, b, f, compare_normalised=False) == pytest.approx(want_raw, abs=1e-13), case
    assert _fmi_m(a, b, f) == pytest.approx(want_faithful, abs=1e-13), case
    assert _fmi_m(a, b, f, compare_normalised=False) == pytest.approx(want_raw, abs=1e-13), case


# --------------------------------------------------------------------------- constructed images
@pytest.fixture(scope="module")
def flat_triple():
    """14 x 16 grey images with every kind of flat window:

    * A constant (40) on columns 0-6, B constant (200) on columns 9-15 (constant in one source);
    * both sources constant in rows 10-13, columns 5-10 (A 40/77, B 200/77 there);
    * F: B's pixels on columns 0-7 (B == F raw, F textured), A's elsewhere, a constant block (90)
      in rows 1-5, columns 10-14 (constant pairs with B's constant 200), a one-point window
      (one bright pixel on a flat ground) copied to B at rows 6-8, columns 1-3, a constant block
      (150) in rows 0-3, columns 0-4 over A's constant 40;
    * the bottom rows also give A-constant / F-constant / B-constant triples.
    """
    rng = np.random.RandomState(16)
    a = rng.randint(0, 256, (14, 16)).astype(float)
    b = rng.randint(0, 256, (14, 16)).astype(float)
    a[:, :7] = 40.0
    b[:, 9:] = 200.0
    a[10:, 5:11] = 77.0
    b[10:, 5:11] = 77.0
    b[10:, 8:11] = 200.0
    f = np.where(np.arange(16)[None, :] < 8, b, a)
    f[1:6, 10:15] = 90.0
    b[6:9, 1:4] = 12.0
    b[7, 2] = 250.0
    f[6:9, 1:4] = b[6:9, 1:4]
    f[10:, 11:] = 90.0
    f[:4, :5] = 150.0
    return a, b, f


def _windows_of(x):
    return np.lib.stride_tricks.sliding_window_view(x, (3, 3))


def test_constructed_images_have_every_kind_of_flat_window(flat_triple):
    a, b, f = flat_triple
    const = [np.ptp(_windows_of(x), axis=(2, 3)) == 0 for x in (a, b, f)]
    eq_bf = (_windows_of(b) == _windows_of(f)).all(axis=(2, 3))
    assert (const[0] & ~const[2]).any() and (const[1] & ~const[2]).any()  # one source only
    assert (const[0] & const[1]).any()  # both sources
    assert (const[0] & const[2] & (_windows_of(a) != _windows_of(f)).any(axis=(2, 3))).any()
    assert (const[1] & const[2] & ~eq_bf).any()  # constant pairs at different levels
    assert (eq_bf & ~const[2]).sum() >= 10  # B == F raw, F textured


@pytest.mark.parametrize("compare_normalised", [True, False])
def test_fmi_pixel_equals_fmi_m_step_by_step(flat_triple, compare_normalised):
    a, b, f = flat_triple
    want = _fmi_m(a, b, f, compare_normalised=compare_normalised)
    got = fmi(a, b, f, "none", compare_normalised=compare_normalised)
    assert got == pytest.approx(want, abs=1e-13)


def test_fmi_pixel_default_is_the_authors_code(flat_triple):
    a, b, f = flat_triple
    faithful = _fmi_m(a, b, f, compare_normalised=True)
    assert M.fmi_pixel(a, b, f) == pytest.approx(faithful, abs=1e-13)
    # the two readings of B's equality test really differ here (one-point windows)
    assert abs(_fmi_m(a, b, f, compare_normalised=False) - faithful) > 1e-3


def test_fmi_edge_on_flat_images_equals_fmi_m(flat_triple):
    a, b, f = flat_triple
    feats = [matlab_edge_sobel(x) for x in flat_triple]
    for quirk in (True, False):
        assert fmi(a, b, f, "edge", compare_normalised=quirk) == pytest.approx(
            _fmi_m(*feats, compare_normalised=quirk), abs=1e-13)


def test_fmi_does_not_depend_on_memory_order(flat_triple):
    a, b, f = flat_triple
    for feature in ("none", "edge"):
        c_order = fmi(a, b, f, feature)
        f_order = fmi(*(np.asfortranarray(x) for x in (a, b, f)), feature)
        t_order = fmi(*(np.ascontiguousarray(x.T).T for x in (a, b, f)), feature)
        assert c_order == f_order == t_order


# --------------------------------------------------------------------------- Q_Y, stable variant
def _exact_yang_stats(images, size=7, sigma=1.5):
    """Gaussian-window means and (co)variances in rational arithmetic, with the float weights of
    fspecial normalised exactly: a constant window has variance exactly 0."""
    g = gauss1d(size, sigma)
    w = [[Fraction(float(g[u] * g[v])) for v in range(size)] for u in range(size)]
    wsum = sum(sum(row) for row in w)
    rows, cols = images[0].shape
    n = len(images)
    out_mu = [np.zeros((rows - size + 1, cols - size + 1)) for _ in images]
    out_cov = {(i, j): np.zeros_like(out_mu[0]) for i in range(n) for j in range(i, n)}
    for p in range(rows - size + 1):
        for q in range(cols - size + 1):
            patches = [[[Fraction(float(x[p + u, q + v])) for v in range(size)] for u in range(size)]
                       for x in images]
            mus = [sum(w[u][v] * pt[u][v] for u in range(size) for v in range(size)) / wsum
                   for pt in patches]
            for k in range(n):
                out_mu[k][p, q] = float(mus[k])
            for (i, j), arr in out_cov.items():
                arr[p, q] = float(sum(w[u][v] * (patches[i][u][v] - mus[i]) * (patches[j][u][v] - mus[j])
                                      for u in range(size) for v in range(size)) / wsum)
    return out_mu, out_cov


def _qy_from_stats(mu, cov, c=2e-16):
    def ssim(i, j):
        return ((2 * mu[i] * mu[j] + c) * (2 * cov[i, j] + c)) / (
            (mu[i] ** 2 + mu[j] ** 2 + c) * (cov[i, i] + cov[j, j] + c))

    s_ab, s_af, s_bf = ssim(0, 1), ssim(0, 2), ssim(1, 2)
    va, vb = cov[0, 0], cov[1, 1]
    both_flat = (va + vb) == 0
    lam = np.where(both_flat, 0.5, va / np.where(both_flat, 1.0, va + vb))
    q = np.where(s_ab >= 0.75, lam * s_af + (1 - lam) * s_bf, np.maximum(s_af, s_bf))
    return float(q.mean()), both_flat


def test_qy_hand_case_both_sources_constant():
    """A = 100, B = 137, F = 137 (one 7x7 window): all variances and covariances 0, so every
    SSIM is its luminance term; SSIM(A,B) = 2*100*137/(100^2 + 137^2) = 27400/28769 >= 0.75,
    lambda = 0.5 (Liu 2020 guard), Q = 0.5*27400/28769 + 0.5*1."""
    want = 0.5 * 27400 / 28769 + 0.5
    assert M.qy(_full(100, 7), _full(137, 7), _full(137, 7)) == pytest.approx(want, abs=1e-14)
    assert M.qy(_full(100, 9), _full(137, 9), _full(137, 9)) == pytest.approx(want, abs=1e-14)


def test_qy_stable_variant_matches_exact_statistics():
    rng = np.random.RandomState(3)
    a = rng.randint(0, 256, (18, 18)).astype(float)
    b = rng.randint(0, 256, (18, 18)).astype(float)
    # levels whose float two-pass variances are not 0 (the 7x7 Gaussian sums to 1 - 2.2e-16) and
    # differ (one ulp of the mean in different binades), so a missed guard gives lambda != 0.5
    a[:, :12] = 137.0       # A flat on the left
    b[:, 4:] = 137.0        # B flat on the right; both flat (same level) on columns 4-11
    b[11:, 4:] = 121.0      # ... and at different levels (SSIM(A,B) 0.992) in the bottom rows
    f = np.where(np.arange(18)[None, :] < 9, b, a)
    f[:8, 4:14] = 137.0     # F flat too (all three flat where it meets both) ...
    f[11:, 4:12] = 121.0    # ... and flat at B's level where A and B differ: lambda decides
    mu, cov = _exact_yang_stats([a, b, f])
    want, both_flat = _qy_from_stats(mu, cov)
    assert both_flat.sum() >= 4  # windows constant in both sources
    assert M.qy(a, b, f) == pytest.approx(want, abs=1e-12)


# --------------------------------------------------------------------------- Q_E window sums
def test_direct_box_sums_are_exact_sums_rounded():
    rng = np.random.RandomState(5)
    x = np.sqrt(rng.randint(0, 200000, (20, 23)).astype(float))  # edge-image-like, non-integer
    want = np.array([[float(sum(Fraction(float(v)) for v in x[p:p + 8, q:q + 8].ravel()))
                      for q in range(16)] for p in range(13)])
    np.testing.assert_allclose(box_sum_direct(x, 8), want, rtol=1e-15, atol=0)
    np.testing.assert_allclose(box_sum_valid(x, 8), want, rtol=1e-12, atol=0)  # the fast path's bound


def test_qe_integral_path_within_its_stated_bound(flat_triple):
    a, b, f = flat_triple
    assert qe(a, b, f) == pytest.approx(qe(a, b, f, integral=True), abs=2e-6)
