"""Feature mutual information, fast-FMI of Haghighat & Razian 2014 (spec §3.16).

Port of the authors' ``fmi(ima, imb, imf, feature, w=3)``: for every interior 3x3 window the
marginal PDFs of the (min-max normalised) feature values, a joint PDF from Nelsen's mixture of
the Fréchet bound and independence, and the normalised MI. The reference loops over windows
and over 9 x 9 CDF pairs per window (~10 min for 520 x 520); here all windows of a chunk are
processed at once as (n, 9, 9) arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import dctn

from .common import check_inputs

__all__ = ["fmi_edge", "fmi_dct", "fmi_pixel", "fmi", "matlab_edge_sobel"]

_CHUNK = 16384


def matlab_edge_sobel(x: np.ndarray) -> np.ndarray:
    """MATLAB ``edge(x)`` default: Sobel (``imfilter`` with /8 masks, replicate border), automatic
    threshold cutoff = 4 * mean(b) on b = bx^2 + by^2, and the 'thinning' non-maximum test of
    ``computeedge`` (out-of-image neighbours count as passed). Returns a 0/1 float image."""
    xp = np.pad(x, 1, mode="edge")
    H, W = x.shape

    def sh(du, dv):
        return xp[1 + du:1 + du + H, 1 + dv:1 + dv + W]

    # x_mask = [1 0 -1; 2 0 -2; 1 0 -1]/8 (correlation), y_mask its transpose; signs are irrelevant
    bx = ((sh(-1, -1) + 2 * sh(0, -1) + sh(1, -1)) - (sh(-1, 1) + 2 * sh(0, 1) + sh(1, 1))) / 8.0
    by = ((sh(-1, -1) + 2 * sh(-1, 0) + sh(-1, 1)) - (sh(1, -1) + 2 * sh(1, 0) + sh(1, 1))) / 8.0
    b = bx * bx + by * by
    cutoff = 4.0 * float(b.sum()) / b.size
    bx, by = np.abs(bx), np.abs(by)
    eps100 = 100 * np.finfo(float).eps
    t = np.ones((4,) + b.shape, dtype=bool)  # b1..b4 neighbour tests, True outside the image
    t[0][:, 1:] = b[:, :-1] <= b[:, 1:]
    t[1][:, :-1] = b[:, :-1] > b[:, 1:]
    t[2][1:, :] = b[:-1, :] <= b[1:, :]
    t[3][:-1, :] = b[:-1, :] > b[1:, :]
    e = (b > cutoff) & (((bx >= by - eps100) & t[0] & t[1]) | ((by >= bx - eps100) & t[2] & t[3]))
    return e.astype(np.float64)


def _windows(x: np.ndarray, w: int) -> np.ndarray:
    """All interior w x w windows flattened in MATLAB column-major order: shape (n, w*w)."""
    v = sliding_window_view(x, (w, w))
    return v.transpose(0, 1, 3, 2).reshape(-1, w * w)


def _minmax(x: np.ndarray) -> np.ndarray:
    lo = x.min(axis=1, keepdims=True)
    hi = x.max(axis=1, keepdims=True)
    rng = hi - lo
    const = rng == 0
    return np.where(const, 1.0, (x - lo) / np.where(const, 1.0, rng))


def _plogp(p: np.ndarray) -> np.ndarray:
    """-p log2|p| with 0 for p == 0: the real part MATLAB keeps for (rare) negative joint masses."""
    out = np.zeros_like(p)
    nz = p != 0
    out[nz] = -p[nz] * np.log2(np.abs(p[nz]))
    return out


def _window_fmi(s: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Normalised MI between the windows in rows of s (source) and f (fused), both normalised."""
    n, l = s.shape
    s_pdf = s / s.sum(axis=1, keepdims=True)
    f_pdf = f / f.sum(axis=1, keepdims=True)
    s_cdf = np.cumsum(s_pdf, axis=1)
    f_cdf = np.cumsum(f_pdf, axis=1)
    st = s_pdf - s_pdf.mean(axis=1, keepdims=True)
    ft = f_pdf - f_pdf.mean(axis=1, keepdims=True)
    num = (st * ft).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(num == 0, 0.0, num / np.sqrt((st * st).sum(axis=1) * (ft * ft).sum(axis=1)))
    idx = np.arange(1, l + 1, dtype=np.float64)
    s_sd = np.sqrt(np.maximum(s_pdf @ (idx * idx) - (s_pdf @ idx) ** 2, 0.0))
    f_sd = np.sqrt(np.maximum(f_pdf @ (idx * idx) - (f_pdf @ idx) ** 2, 0.0))

    u = f_cdf[:, :, None]  # i indexes F
    v = s_cdf[:, None, :]  # j indexes S
    upper = 0.5 * (u + v - np.abs(u - v))  # Fréchet upper bound min(u, v)
    lower = 0.5 * (u + v - 1 + np.abs(u + v - 1))  # Fréchet lower bound max(u + v - 1, 0)
    prod = u * v
    pos = c >= 0
    bound = np.where(pos[:, None, None], upper, lower)
    cov = (bound - prod).sum(axis=(1, 2))
    sd_ok = (s_sd != 0) & (f_sd != 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mix = np.where(sd_ok & ~(pos & (c == 0)), c / (cov / (f_sd * s_sd)), 0.0)
    # joint mass of each cell = second difference of the bound copula (CDF 0 before index 1)
    full = np.zeros((n, l + 1, l + 1))
    full[:, 1:, 1:] = bound
    d2 = full[:, 1:, 1:] - full[:, :-1, 1:] - full[:, 1:, :-1] + full[:, :-1, :-1]
    indep = f_pdf[:, :, None] * s_pdf[:, None, :]
    m = mix[:, None, None]
    jpdf = m * d2 + (1 - m) * indep
    h_joint = _plogp(jpdf).sum(axis=(1, 2))
    h_s = _plogp(s_pdf).sum(axis=1)
    h_f = _plogp(f_pdf).sum(axis=1)
    mi = h_s + h_f - h_joint
    return np.where(mi == 0, 0.0, 2 * mi / (h_s + h_f))


def _fmi_features(af: np.ndarray, bf: np.ndarray, ff: np.ndarray, w: int = 3) -> float:
    wa, wb, wf = _windows(af, w), _windows(bf, w), _windows(ff, w)
    total = 0.0
    for start in range(0, wa.shape[0], _CHUNK):
        sa, sb, sf = (x[start:start + _CHUNK] for x in (wa, wb, wf))
        f_norm = _minmax(sf)
        eq_a = (sa == sf).all(axis=1)
        # Reference quirk: after the A pass the fused window variable holds its *normalised*
        # values unless A's window equalled it, and B's equality test compares against that.
        f_seen_by_b = np.where(eq_a[:, None], sf, f_norm)
        eq_b = (sb == f_seen_by_b).all(axis=1)
        fa = np.ones(sa.shape[0])
        fb = np.ones(sa.shape[0])
        if (~eq_a).any():
            fa[~eq_a] = _window_fmi(_minmax(sa[~eq_a]), f_norm[~eq_a])
        if (~eq_b).any():
            fb[~eq_b] = _window_fmi(_minmax(sb[~eq_b]), f_norm[~eq_b])
        total += float(((fa + fb) / 2).sum())
    return total / wa.shape[0]


def fmi(a, b, fused, feature: str = "edge", w: int = 3) -> float:
    """Fast-FMI with a chosen feature: 'edge' (MATLAB ``edge`` Sobel), 'dct' (``dct2``, orthonormal
    DCT-II of the whole image) or 'none' (raw pixels); ``w`` x ``w`` sliding windows."""
    a, b, f = check_inputs(a, b, fused)
    if w % 2 == 0 or min(f.shape) < w:
        raise ValueError(f"window {w} must be odd and fit in the image {f.shape}")
    if feature == "edge":
        feats = [matlab_edge_sobel(x) for x in (a, b, f)]
    elif feature == "dct":
        feats = [dctn(x, type=2, norm="ortho") for x in (a, b, f)]
    elif feature == "none":
        feats = [a, b, f]
    else:
        raise ValueError(f"unknown FMI feature {feature!r}; use 'edge', 'dct' or 'none'")
    return _fmi_features(*feats, w=w)


def fmi_edge(a, b, fused) -> float:
    """Fast-FMI on MATLAB ``edge`` (Sobel, automatic threshold) binary maps — GACN's FMI_EDGE."""
    return fmi(a, b, fused, "edge")


def fmi_dct(a, b, fused) -> float:
    """Fast-FMI on whole-image ``dct2`` coefficients — GACN's FMI_DCT."""
    return fmi(a, b, fused, "dct")


def fmi_pixel(a, b, fused) -> float:
    """Fast-FMI on raw pixels (``feature='none'``; Liu 2024 collection's FMI_pixel)."""
    return fmi(a, b, fused, "none")
