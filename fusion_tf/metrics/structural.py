"""SSIM-family fusion metrics: SSIM, MS-SSIM, Yang's Q_Y, Cvejic's Q_C, Piella's Q_S / Q_W / Q_E.

Spec §3.10, §3.13, §3.17. Local statistics use MATLAB ``filter2(..., 'valid')`` windows.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .common import box_sum_direct, box_sum_valid, check_inputs, filter2_small, gauss1d, sep_filter_valid

__all__ = ["ssim", "ms_ssim", "qy", "qy_onepass", "qc", "qs", "qw", "qe"]


# --------------------------------------------------------------------------- local statistics
def _stats_one_pass(x, y, filt):
    """Means, variances and covariance as E[xy] - mu_x mu_y (Wang's ``ssim_index``)."""
    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cxy = filt(x * y) - mx * my
    return mx, my, vx, vy, cxy


def _gauss_stats_two_pass(images, size=7, sigma=1.5, flat_below=1.0):
    """Gaussian-window ('valid') means and all (co)variances, two-pass: sum w (x - mu)(y - mu).

    The one-pass E[xy] - mu_x mu_y of the MATLAB code leaves round-off residues (~1e-11 on
    0..255 data) of either sign in flat or saturated regions, which swamp Yang's 2e-16 constants
    (spec §3.10). Those residues are negligible wherever every local variance is clearly
    non-zero, so the one-pass values are kept there and only windows with a variance below
    ``flat_below`` are recomputed two-pass from their size x size patches.

    A window that is constant in an image (its max equals its min, tested exactly) gets variance
    and all covariances with that image exactly 0, the two-pass value in exact arithmetic. Computed
    in floating point the two-pass sum is not 0 there: the normalised Gaussian sums to
    0.9999999999999998, so a constant 137 has mean 136.99999999999994 and a residual variance
    ~5e-32, which is enough to defeat the ``sigma_A^2 + sigma_B^2 == 0`` guard of :func:`qy`.
    Returns (means, {(i, j): cov_ij}).
    """
    g = gauss1d(size, sigma)
    w = np.outer(g, g)

    def filt(z):
        return sep_filter_valid(z, g)

    mus = [filt(x) for x in images]
    n = len(images)
    acc = {(i, j): filt(images[i] * images[j]) - mus[i] * mus[j] for i in range(n) for j in range(i, n)}
    flat = np.zeros(mus[0].shape, dtype=bool)
    for i in range(n):
        flat |= acc[i, i] < flat_below
    if flat.any():
        patches = [sliding_window_view(x, (size, size))[flat] for x in images]
        const = [p.max(axis=(1, 2)) == p.min(axis=(1, 2)) for p in patches]
        d = [p - m[flat][:, None, None] for p, m in zip(patches, mus)]
        for (i, j), s in acc.items():
            s[flat] = np.where(const[i] | const[j], 0.0, np.einsum("kuv,kuv,uv->k", d[i], d[j], w))
    return mus, acc


def _ssim_map(mx, my, vx, vy, cxy, c1, c2):
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


# --------------------------------------------------------------------------- SSIM / MS-SSIM
def _ssim_mean(x, y, k1=0.01, k2=0.03, L=255.0):
    g = gauss1d(11, 1.5)
    mx, my, vx, vy, cxy = _stats_one_pass(x, y, lambda z: sep_filter_valid(z, g))
    return float(_ssim_map(mx, my, vx, vy, cxy, (k1 * L) ** 2, (k2 * L) ** 2).mean())


def ssim(a, b, fused) -> float:
    """Mean of SSIM(A,F) and SSIM(B,F), Wang et al. 2004 (11x11 Gaussian sigma 1.5, K = (0.01,
    0.03), L = 255, 'valid' map). The equal-weight average of the two source scores is the usual
    fusion use of a full-reference index (same rule as :func:`ms_ssim`)."""
    a, b, f = check_inputs(a, b, fused)
    return 0.5 * (_ssim_mean(a, f) + _ssim_mean(b, f))


_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _ms_ssim_pair(x, y, max_val=255.0, k1=0.01, k2=0.03):
    """``tf.image.ssim_multiscale`` semantics in float64: 11x11 Gaussian, 'VALID' windows,
    2x2 average pooling after symmetric padding of odd sizes, ReLU on cs / ssim."""
    g = gauss1d(11, 1.5)
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    vals = []
    for s in range(len(_MS_WEIGHTS)):
        if s > 0:
            H, W = x.shape
            pad = ((0, H % 2), (0, W % 2))
            x = np.pad(x, pad, mode="symmetric")
            y = np.pad(y, pad, mode="symmetric")
            x = 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])
            y = 0.25 * (y[0::2, 0::2] + y[1::2, 0::2] + y[0::2, 1::2] + y[1::2, 1::2])
        if min(x.shape) < 11:
            return float("nan")
        mx, my, vx, vy, cxy = _stats_one_pass(x, y, lambda z: sep_filter_valid(z, g))
        lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
        cs = (2 * cxy + c2) / (vx + vy + c2)
        vals.append(max(float((lum * cs).mean()), 0.0) if s == len(_MS_WEIGHTS) - 1
                    else max(float(cs.mean()), 0.0))
    return float(np.prod(np.power(vals, _MS_WEIGHTS)))


def ms_ssim(a, b, fused) -> float:
    """Mean of MS-SSIM(A,F) and MS-SSIM(B,F) (GIPC-GAN), Wang 2003, 5 scales, weights (0.0448,
    0.2856, 0.3001, 0.2363, 0.1333) — the definition of ``tf.image.ssim_multiscale(max_val=255)``.
    Returns ``nan`` when a scale becomes smaller than the 11x11 window (images < ~161 px)."""
    a, b, f = check_inputs(a, b, fused)
    return 0.5 * (_ms_ssim_pair(a, f) + _ms_ssim_pair(b, f))


# --------------------------------------------------------------------------- Yang Q_Y, Cvejic Q_C
_YANG_C = 2e-16


def _yang_maps(a, b, f, two_pass: bool):
    """SSIM(A,B), SSIM(A,F), SSIM(B,F) maps and sigma^2_A, sigma^2_B, sigma_AF, sigma_BF (Yang's
    7x7 Gaussian, sigma 1.5, C1 = C2 = 2e-16, 'valid')."""
    if two_pass:
        (ma, mb, mf), s = _gauss_stats_two_pass([a, b, f])
        va, vb, vf = s[0, 0], s[1, 1], s[2, 2]
        cab, caf, cbf = s[0, 1], s[0, 2], s[1, 2]
    else:
        g = gauss1d(7, 1.5)

        def filt(z):
            return sep_filter_valid(z, g)

        ma, mb, mf = filt(a), filt(b), filt(f)
        va, vb, vf = filt(a * a) - ma * ma, filt(b * b) - mb * mb, filt(f * f) - mf * mf
        cab, caf, cbf = filt(a * b) - ma * mb, filt(a * f) - ma * mf, filt(b * f) - mb * mf
    c = _YANG_C
    s_ab = _ssim_map(ma, mb, va, vb, cab, c, c)
    s_af = _ssim_map(ma, mf, va, vf, caf, c, c)
    s_bf = _ssim_map(mb, mf, vb, vf, cbf, c, c)
    return s_ab, s_af, s_bf, va, vb, caf, cbf


def qy(a, b, fused, two_pass: bool = True) -> float:
    """Yang's SSIM-based metric Q_Y (toolbox ``metricYang`` + Liu 2020 NaN guard), **stable
    variant** by default: local (co)variances computed two-pass (spec §3.10).

    Per pixel: if SSIM(A,B) >= 0.75 use lambda SSIM(A,F) + (1-lambda) SSIM(B,F), lambda =
    sigma^2_A/(sigma^2_A + sigma^2_B) (+0.5 each where both are 0), else max(SSIM(A,F), SSIM(B,F));
    mean over the 'valid' map (7x7 Gaussian, sigma 1.5, C1 = C2 = 2e-16). ``two_pass=False`` is
    the literal one-pass port (:func:`qy_onepass`), whose values in flat or saturated regions are
    platform round-off (up to 970 off the published value on g_03).

    Which reference each part follows: the map and lambda are the toolbox ``metricYang``; the
    +0.5 guard is Liu 2020's; the variances are the exact two-pass values, so a window constant in
    an image has variance (and covariances with it) exactly 0 - tested as window max == min - and
    a window constant in both sources gets lambda = 0.5 exactly, as the guard intends. (Before
    this was made exact, a constant window kept a ~5e-32 residue from the Gaussian's 1 - 2e-16
    sum, so the guard missed and lambda came out 0, 0.2 or 1; up to 3.1e-5 on a score.)
    """
    a, b, f = check_inputs(a, b, fused)
    s_ab, s_af, s_bf, va, vb, _, _ = _yang_maps(a, b, f, two_pass)
    flat = (va + vb) == 0  # Liu 2020 NaN guard: +0.5 to both variances
    va = np.where(flat, va + 0.5, va)
    vb = np.where(flat, vb + 0.5, vb)
    lam = va / (va + vb)
    q = np.where(s_ab >= 0.75, lam * s_af + (1 - lam) * s_bf, np.maximum(s_af, s_bf))
    return float(q.mean())


def qy_onepass(a, b, fused) -> float:
    """Literal port of ``metricYang`` (one-pass E[x^2] - mu^2 variances). Unstable on flat or
    saturated regions (spec §3.10); prefer :func:`qy`."""
    return qy(a, b, fused, two_pass=False)


def qc(a, b, fused, clip_weight: bool = False) -> float:
    """Cvejic's metric Q_C (toolbox ``metricCvejic(..., 2)``).

    SSIM maps with Yang's 7x7 Gaussian and 2e-16 constants; weight
    s = sigma_AF/(sigma_AF + sigma_BF); Q = mean(s SSIM(A,F) + (1-s) SSIM(B,F)). As in the toolbox,
    the *map value* is set to 0 where s < 0 and to 1 where s > 1; ``clip_weight=True`` instead
    clips s to [0, 1] as Cvejic's paper describes. Variances two-pass (see :func:`qy`; covariances
    with a window constant in either image are exactly 0); where sigma_AF + sigma_BF = 0 the
    weight is 0.5 (the toolbox gives NaN).
    """
    a, b, f = check_inputs(a, b, fused)
    _, s_af, s_bf, _, _, caf, cbf = _yang_maps(a, b, f, two_pass=True)
    den = caf + cbf
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(den == 0, 0.5, caf / np.where(den == 0, 1.0, den))
    if clip_weight:
        s = np.clip(s, 0.0, 1.0)
    q = s * s_af + (1 - s) * s_bf
    q = np.where(s < 0, 0.0, np.where(s > 1, 1.0, q))
    return float(q.mean())


# --------------------------------------------------------------------------- Piella
_PIELLA_C = (1e-6 * 255.0) ** 2  # K = (1e-6, 1e-6), L = 255 -> 6.5025e-8


def _piella_parts(a, b, f, win=8, integral: bool = False):
    """Box-window ('valid', 8x8) SSIM maps SSIM(F,A), SSIM(F,B) and guarded variances of A, B.

    Window sums are direct (``box_sum_direct``: win shifted adds per axis, MATLAB's
    ``filter2(ones(8)/64, ...)`` up to the order of the adds): within ~1e-15 relative of MATLAB on
    any data. ``integral=True`` takes them from integral images instead: exact on integer-valued
    images, but on the non-integer edge images of :func:`qe` the cumulative sums (~1e12) lose
    ~1e-4 absolute per window, which moves Q_E by up to ~2e-6 (measured: 1.9e-6 against GNU
    Octave). The direct sums are no slower at this window size.
    """
    n = float(win * win)
    box = box_sum_valid if integral else box_sum_direct

    def filt(z):
        return box(z, win) / n

    ma, mb, mf = filt(a), filt(b), filt(f)
    va, vb, vf = filt(a * a) - ma * ma, filt(b * b) - mb * mb, filt(f * f) - mf * mf
    caf, cbf = filt(a * f) - ma * mf, filt(b * f) - mb * mf
    c = _PIELLA_C
    s_fa = _ssim_map(mf, ma, vf, va, caf, c, c)
    s_fb = _ssim_map(mf, mb, vf, vb, cbf, c, c)
    flat = (va + vb) == 0
    va = np.where(flat, va + 0.5, va)
    vb = np.where(flat, vb + 0.5, vb)
    return s_fa, s_fb, va, vb


def _qw_maps(a, b, f, integral: bool = False):
    s_fa, s_fb, va, vb = _piella_parts(a, b, f, integral=integral)
    lam = va / (va + vb)
    cw = np.maximum(va, vb)
    return float((cw / cw.sum() * (lam * s_fa + (1 - lam) * s_fb)).sum())


def qs(a, b, fused) -> float:
    """Piella's fusion quality index Q_S (toolbox ``metricPeilla(..., 1)``) with the Liu 2020
    SSIM settings (8x8 box window, K = 1e-6): mean of lambda SSIM(F,A) + (1-lambda) SSIM(F,B),
    lambda = sigma^2_A/(sigma^2_A + sigma^2_B). The tiny K makes it Piella's UIQI-based index."""
    a, b, f = check_inputs(a, b, fused)
    s_fa, s_fb, va, vb = _piella_parts(a, b, f)
    lam = va / (va + vb)
    return float((lam * s_fa + (1 - lam) * s_fb).mean())


def qw(a, b, fused) -> float:
    """Piella's weighted fusion quality index Q_W (Liu 2020 version of ``metricPeilla(..., 2)``).

    Same local terms as :func:`qs`, weighted by c = max(sigma^2_A, sigma^2_B)/sum(max(...)).
    Spec §3.13.
    """
    a, b, f = check_inputs(a, b, fused)
    return _qw_maps(a, b, f)


_P1 = np.array([[1.0, 0.0, -1.0]] * 3)
_P2 = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]])


def _edge(x):
    gx, gy = filter2_small(_P1, x), filter2_small(_P2, x)
    return np.sqrt(gx * gx + gy * gy)


def qe(a, b, fused, alpha: float = 1.0, integral: bool = False) -> float:
    """Piella's edge-dependent fusion quality index Q_E (Liu 2020 version; the zhengliu original
    crashes for this case): Q_W(A,B,F) * Q_W(edge A, edge B, edge F)^alpha, edge images from
    Prewitt-type masks. Spec §3.13.

    The 8x8 window sums are direct sums, as MATLAB's ``filter2`` forms them: Q_E then agrees with
    the Liu 2020 MATLAB code under GNU Octave to ~2e-15. ``integral=True`` uses integral images
    (the previous implementation): exact on the grey images, but on the non-integer edge images
    it is off by up to ~2e-6 (1.9e-6 measured against Octave on 108 fused images)."""
    a, b, f = check_inputs(a, b, fused)
    return (_qw_maps(a, b, f, integral)
            * _qw_maps(_edge(a), _edge(b), _edge(f), integral) ** alpha)
