"""Feature mutual information, fast-FMI of Haghighat & Razian 2014 (spec §3.16).

Port of the authors' ``fmi(ima, imb, imf, feature, w=3)``: for every interior 3x3 window the
marginal PDFs of the (min-max normalised) feature values, a joint PDF from Nelsen's mixture of
the Fréchet bound and independence, and the normalised MI. The reference loops over windows
and over 9 x 9 CDF pairs per window (~10 min for 520 x 520); here the windows of a chunk are the
columns of (9, n) arrays, and the 9 x 9 joint PDF is never formed (see :func:`_window_fmi`), which
takes about a second per feature. ``tests/test_metrics_properties.py`` checks it against a
literal per-window port, ``tests/test_metrics_flat_regions.py`` against a transcription of
``fmi.m`` with MATLAB's summation order on images with constant windows (see :func:`fmi` for the
two places where the reference's arithmetic, not its description, decides the value).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import dctn

from .common import check_inputs

__all__ = ["fmi_edge", "fmi_dct", "fmi_pixel", "fmi", "matlab_edge_sobel"]

_CHUNK = 32768


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
    """Min-max normalise each column (one window per column); constant windows become ones."""
    lo = x.min(axis=0)
    hi = x.max(axis=0)
    rng = hi - lo
    const = rng == 0
    return np.where(const, 1.0, (x - lo) / np.where(const, 1.0, rng))


def _plogp(p: np.ndarray) -> np.ndarray:
    """-p log2|p| with 0 for p == 0: the real part MATLAB keeps for (rare) negative joint masses."""
    lg = np.zeros_like(p)
    np.log2(np.abs(p), out=lg, where=p != 0)
    return -p * lg


def _fused_side(f: np.ndarray) -> dict:
    """Per-window quantities of the normalised fused windows f (shape (l, n)), shared by A and B."""
    pdf = _pdf(f)
    cdf = _cumsum0(pdf)
    log = _log2_pos(pdf)
    dev = _deviation(pdf)
    return {
        "pdf": pdf, "cdf": cdf, "dev": dev, "dev2": _seq_sum(dev * dev),
        "sd": _pdf_sd(pdf), "log": log, "plogp": (pdf * log).sum(axis=0),
        "cdf_sum": cdf.sum(axis=0),
    }


# The reference's arithmetic, reproduced operation by operation where a round-off residue decides
# a branch. With l = 9 values MATLAB's left-to-right sum of nine 1/9 is 1 + 2^-52, so the PDF of a
# constant (all-ones) window has mean != 1/9 and a uniform, non-zero deviation d = 1/9 - mean;
# a pair of constant windows then has sum(d*d) / sqrt(sum(d*d) * sum(d*d)) = 1 exactly (c = 1,
# a perfectly dependent pair, FMI ~= 1), not the c = 0 (independent pair, FMI ~= 0) that an exact
# or pairwise sum would give. The same holds for w = 5 and 7 (the sums are 1 + 2^-52 and 1 + 3 2^-52).
# Summing row by row over the (l, n) arrays makes this independent of memory order (NumPy's
# reduction along a contiguous axis is pairwise and gives exactly 1).
def _seq_sum(x: np.ndarray) -> np.ndarray:
    """Sum down the first axis strictly left to right, like MATLAB's ``sum`` of a short vector."""
    out = x[0].copy()
    for k in range(1, x.shape[0]):
        out += x[k]
    return out


def _pdf(x: np.ndarray) -> np.ndarray:
    """``x(:) ./ sum(sum(x))`` per column: the window's columns (w consecutive rows of the
    column-major flattening) are summed first, then the column sums, as MATLAB does."""
    l = x.shape[0]
    w = math.isqrt(l)
    total = _seq_sum(x[0:w])
    for j in range(1, w):
        total = total + _seq_sum(x[j * w:(j + 1) * w])
    return x / total


def _deviation(pdf: np.ndarray) -> np.ndarray:
    """``pdf - mean(pdf)`` with MATLAB's mean (left-to-right sum, then / l)."""
    return pdf - _seq_sum(pdf) / pdf.shape[0]


def _pdf_sd(pdf: np.ndarray) -> np.ndarray:
    """Population standard deviation of the index under the PDF from the reference's running sums
    of i*p and i^2*p (a one-point PDF gives exactly 0). A round-off negative variance, where MATLAB
    would return an imaginary sd, is clamped to 0."""
    idx = np.arange(1, pdf.shape[0] + 1, dtype=np.float64)[:, None]
    e1 = _seq_sum(idx * pdf)
    e2 = _seq_sum(idx * idx * pdf)
    return np.sqrt(np.maximum(e2 - e1 * e1, 0.0))


def _log2_pos(pdf: np.ndarray) -> np.ndarray:
    """log2 of the positive entries, 0 elsewhere."""
    lg = np.zeros_like(pdf)
    np.log2(pdf, out=lg, where=pdf > 0)
    return lg


def _cumsum0(x: np.ndarray) -> np.ndarray:
    """Cumulative sum down the (short) first axis, element by element like MATLAB's loop."""
    out = np.empty_like(x)
    out[0] = x[0]
    for k in range(1, x.shape[0]):
        np.add(out[k - 1], x[k], out=out[k])
    return out


def _count(mask: np.ndarray) -> np.ndarray:
    """Sum a boolean (l, l, n) array over its middle axis as small integers (l < 128)."""
    return mask.view(np.int8).sum(axis=1, dtype=np.int8).astype(np.intp)


def _take(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take_along_axis(arr, idx, axis=0)


def _window_fmi(s: np.ndarray, fs: dict) -> np.ndarray:
    """Normalised MI of each window pair: columns of s (normalised source windows, (l, n)) with the
    fused-window quantities ``fs`` of the same columns.

    The reference builds, per window, the l x l joint PDF m * D + (1 - m) * f_i s_j, where D holds
    the cell masses of the Fréchet bound copula (upper bound for c >= 0, lower for c < 0) and
    m = c / corr(bound), then sums -p log2|p| over all cells. D is non-zero only on the cells met
    when the two CDF breakpoint sequences are merged (a monotone staircase of <= 2l - 1 cells),
    so here the merge ranks give those cells and their masses, the bound's grid sum follows from
    the same ranks, and the entropy of the independent part is taken in closed form. Equal to the
    reference's cell sums up to round-off.
    """
    l, n = s.shape
    f_pdf, f_cdf = fs["pdf"], fs["cdf"]
    s_pdf = _pdf(s)
    s_cdf = _cumsum0(s_pdf)
    dev = _deviation(s_pdf)
    num = _seq_sum(dev * fs["dev"])  # the reference's c, with its summation order (see _seq_sum)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(num == 0, 0.0, num / np.sqrt(_seq_sum(dev * dev) * fs["dev2"]))
    s_sd = _pdf_sd(s_pdf)
    pos = c >= 0

    # Source breakpoints O (increasing, O_{-1} = 0) and the source PDF of each O-interval.
    # Upper bound (c >= 0): O = S. Lower bound: the countermonotone partner 1 - S, reversed;
    # O-interval j then maps to source cell l-1-j.
    one = np.ones((1, n))
    o_brk = np.where(pos, s_cdf, np.concatenate([1.0 - s_cdf[l - 2::-1], one]))
    s_lg = _log2_pos(s_pdf)
    o_pdf = np.where(pos, s_pdf, s_pdf[::-1])
    o_lg = np.where(pos, s_lg, s_lg[::-1])
    r = _count(o_brk[None, :, :] < f_cdf[:, None, :])  # r_i = #{O_j < F_i}
    q = _count(f_cdf[None, :, :] <= o_brk[:, None, :])  # q_j = #{F_i <= O_j}

    # Grid sums of the bound: sum_ij min(F_i, S_j) and sum_ij max(F_i + S_j - 1, 0).
    upper = (f_cdf * (l - r)).sum(axis=0) + (s_cdf * (l - q)).sum(axis=0)
    o_cum = np.concatenate([np.zeros((1, n)), _cumsum0(o_brk)])
    lower = (f_cdf * r - _take(o_cum, r)).sum(axis=0) \
        + np.maximum(f_cdf - (1.0 - s_cdf[l - 1]), 0.0).sum(axis=0)
    cov = np.where(pos, upper, lower) - fs["cdf_sum"] * s_cdf.sum(axis=0)
    sd_ok = (s_sd != 0) & (fs["sd"] != 0) & (c != 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(sd_ok, c * (fs["sd"] * s_sd) / np.where(sd_ok, cov, 1.0), 0.0)
    a = 1.0 - m

    # Entropy of a * f_i s_j over its non-zero cells, in closed form ...
    f_log, s_log = fs["plogp"], (s_pdf * s_lg).sum(axis=0)
    f_sum, s_sum = f_pdf.sum(axis=0), s_pdf.sum(axis=0)
    with np.errstate(divide="ignore"):
        log_a = np.where(a != 0, np.log2(np.abs(np.where(a != 0, a, 1.0))), 0.0)
    h_joint = -a * (log_a * f_sum * s_sum + f_log * s_sum + f_sum * s_log)

    # ... corrected on the staircase cells. Interval ending at F_i: cell (i, r_i); interval
    # ending at O_j: cell (q_j, j); each starts at the previous merged breakpoint.
    f_prev = np.concatenate([np.zeros((1, n)), f_cdf])
    o_prev = np.concatenate([np.zeros((1, n)), o_brk])
    r_c, q_c = np.minimum(r, l - 1), np.minimum(q, l - 1)
    mass_f = np.where(r < l, f_cdf - np.maximum(f_prev[:-1], _take(o_prev, r_c)), 0.0)
    mass_o = np.where(q < l, o_brk - np.maximum(o_prev[:-1], _take(f_prev, q_c)), 0.0)
    # -x log2|x| of the independent part a f_i s_j reuses the logs of a and of the PDFs
    ind_f = a * f_pdf * _take(o_pdf, r_c)
    ind_o = a * _take(f_pdf, q_c) * o_pdf
    lg_f = log_a + fs["log"] + _take(o_lg, r_c)
    lg_o = log_a + _take(fs["log"], q_c) + o_lg
    h_joint += (_plogp(m * mass_f + ind_f) + ind_f * lg_f
                + _plogp(m * mass_o + ind_o) + ind_o * lg_o).sum(axis=0)

    mi = -s_log - f_log - h_joint
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mi == 0, 0.0, 2 * mi / (-s_log - f_log))


def _fmi_features(af: np.ndarray, bf: np.ndarray, ff: np.ndarray, w: int = 3,
                  compare_normalised: bool = True) -> float:
    wa, wb, wf = _windows(af, w), _windows(bf, w), _windows(ff, w)
    total = 0.0
    for start in range(0, wa.shape[0], _CHUNK):
        sa, sb, sf = (np.ascontiguousarray(x[start:start + _CHUNK].T) for x in (wa, wb, wf))
        f_norm = _minmax(sf)
        eq_a = (sa == sf).all(axis=0)
        if compare_normalised:
            # fmi.m: the A pass overwrites fSub with its normalised values (unless A's window
            # equalled it), and B's equality test compares B's raw window against that.
            eq_b = (sb == np.where(eq_a, sf, f_norm)).all(axis=0)
        else:
            eq_b = (sb == sf).all(axis=0)
        fmi_sum = 2.0 * sa.shape[1] - (~eq_a).sum() - (~eq_b).sum()  # windows scoring 1
        todo = ~(eq_a & eq_b)
        fs = _fused_side(f_norm[:, todo])
        for src, eq in ((sa, eq_a), (sb, eq_b)):
            need = ~eq[todo]
            if need.any():
                sub = {k: (v[:, need] if v.ndim == 2 else v[need]) for k, v in fs.items()}
                fmi_sum += float(_window_fmi(_minmax(src[:, todo][:, need]), sub).sum())
        total += fmi_sum / 2.0
    return total / wa.shape[0]


def fmi(a, b, fused, feature: str = "edge", w: int = 3, compare_normalised: bool = True) -> float:
    """Fast-FMI with a chosen feature: 'edge' (MATLAB ``edge`` Sobel), 'dct' (``dct2``, orthonormal
    DCT-II of the whole image) or 'none' (raw pixels); ``w`` x ``w`` sliding windows. Follows the
    authors' ``fmi.m`` (mhaghighat/fmi) step by step, in two places where that matters:

    * **B's equality test** (``compare_normalised``). A window pair scores 1 when the source and
      fused feature windows are equal (spec §3.16). In ``fmi.m`` the A pass overwrites the fused
      window with its min-max normalised version (unless A's window equalled it), so the B pass
      compares B's *raw* window with the *normalised* fused window. ``compare_normalised=True``
      (default) is that behaviour; ``False`` compares B with the raw fused window, as the fast-FMI
      paper's description reads (and as the previous default did).
    * **Constant windows.** A constant window normalises to ones, its PDF to 1/l. The reference
      then takes the Pearson correlation c of two PDFs, and for two constant windows that is a
      ratio of round-off residues: MATLAB's left-to-right ``mean`` of nine 1/9 is (1 + 2^-52)/9,
      the deviations are a uniform d != 0 and c = sum(d d)/sqrt(sum(d d) sum(d d)) = 1, so the
      pair is perfectly dependent and scores ~1 (1 - O(1e-15)). This port reproduces that
      arithmetic (left-to-right sums, ``sum(sum(.))`` by columns) independently of memory order;
      a constant window against a non-constant one gets |c| ~ 1e-16 and scores ~0, as in the
      reference. (The same holds for w = 5 and 7.)

    The two ``compare_normalised`` settings differ where B's raw window equals F's raw window
    but not F's normalised one: with ``False`` the pair scores 1; with ``True`` it is scored
    through the formula on identical normalised windows, which gives 1 - O(1e-15), except for a
    one-point PDF (one pixel above an otherwise constant window: entropy 0, MI 0), which scores 0.
    On binary (``edge``) or DCT features that exception cannot arise, so there the two settings
    agree to round-off (GACN's 26 results: FMI_EDGE identical to 2e-16); on raw pixels they differ
    (GACN's ``gray_mwg_clock``: 0.65875 vs 0.66029). The large gaps seen before this version
    (FMI_PIXEL up to 0.37 from Octave; FMI_EDGE on GACN's results 0.8977 vs 0.8797 between the
    settings) came from constant pairs scored 0 by NumPy's pairwise sums.
    """
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
    return _fmi_features(*feats, w=w, compare_normalised=compare_normalised)


def fmi_edge(a, b, fused, compare_normalised: bool = True) -> float:
    """Fast-FMI on MATLAB ``edge`` (Sobel, automatic threshold, thinning) binary maps — GACN's
    FMI_EDGE (its Table 1 value for GACN, 0.897806, is reproduced as 0.89772). Follows the authors'
    ``fmi.m``; on binary maps ``compare_normalised`` changes nothing beyond round-off (see
    :func:`fmi`)."""
    return fmi(a, b, fused, "edge", compare_normalised=compare_normalised)


def fmi_dct(a, b, fused, compare_normalised: bool = True) -> float:
    """Fast-FMI on whole-image ``dct2`` coefficients — GACN's FMI_DCT (Table 1: 0.4058; the
    published PNGs give 0.4061). Follows the authors' ``fmi.m`` (GNU Octave agrees to 2e-15)."""
    return fmi(a, b, fused, "dct", compare_normalised=compare_normalised)


def fmi_pixel(a, b, fused, compare_normalised: bool = True) -> float:
    """Fast-FMI on raw pixels (``feature='none'``; Liu 2024 collection's FMI_pixel), following the
    authors' ``fmi.m`` (mhaghighat/fmi): B's window is compared with the *normalised* fused window
    and constant-window pairs score as MATLAB's arithmetic makes them (see :func:`fmi`).
    ``compare_normalised=False`` gives the previous default (B compared with the raw fused window)."""
    return fmi(a, b, fused, "none", compare_normalised=compare_normalised)
