"""MATLAB conventions shared by the metric ports (spec ``metrics.md`` §1).

Everything here works on float64 arrays holding 0..255 grey values. The published scores were
produced by MATLAB code, so rounding, filtering and frequency grids follow MATLAB exactly
(``round`` half away from zero, ``filter2`` = zero-padded correlation, ``freqspace`` grids).
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from fusion_tf.core.color import rgb_to_grey_matlab, round_half_away

SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
SOBEL_Y = SOBEL_X.T.copy()

#: MATLAB ``round`` (half away from zero); NumPy's ``round`` is half-to-even.
matlab_round = round_half_away


def rgb2gray(img) -> np.ndarray:
    """MATLAB ``rgb2gray`` on uint8 data (``core.color.rgb_to_grey_matlab``), as float64 0..255.

    A 2-D array is returned unchanged (as float64). A trailing channel axis of 1 is squeezed;
    4-channel input drops alpha. PIL's ``convert('L')`` differs by one level on ~0.5 % of
    colours, so it must not be substituted.
    """
    a = np.asarray(img)
    if a.ndim == 2:
        return a.astype(np.float64, copy=False)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected a HxW or HxWx3 image, got shape {a.shape}")
    if a.shape[2] == 1:
        return a[:, :, 0].astype(np.float64)
    return rgb_to_grey_matlab(a[:, :, :3])


#: Float64 grey image of any input (colour goes through :func:`rgb2gray`).
as_gray = rgb2gray


def check_inputs(a, b, f, need_sources: bool = True):
    """Validate and convert ``(a, b, fused)`` to float64 grey arrays of one shape."""
    f = as_gray(f)
    if f.ndim != 2 or min(f.shape) < 2:
        raise ValueError(f"fused image must be 2-D and at least 2x2, got shape {f.shape}")
    if not need_sources:
        return None, None, f
    if a is None or b is None:
        raise ValueError("this metric needs both source images")
    a = as_gray(a)
    b = as_gray(b)
    if a.shape != f.shape or b.shape != f.shape:
        raise ValueError(f"image sizes differ: A {a.shape}, B {b.shape}, fused {f.shape}")
    return a, b, f


def normalize1(x: np.ndarray) -> np.ndarray:
    """Toolbox ``normalize1``: min-max stretch to 0..255, MATLAB-rounded (identity on an all-zero image)."""
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        # MATLAB divides by zero here unless the image is all zeros; a constant image becomes 0.
        return x.copy() if hi == 0 else np.zeros_like(x)
    return matlab_round((x - lo) / (hi - lo) * 255.0)


def filter2_small(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``filter2(h, x, 'same')`` for a small odd kernel, by explicit shifted sums.

    Exact on integer-valued images (no FFT/round-off), which keeps tie-sensitive steps such as
    ``g_S > g_F`` identical to MATLAB.
    """
    kh, kw = h.shape
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x, ((ph, ph), (pw, pw)))
    out = np.zeros_like(x, dtype=np.float64)
    H, W = x.shape
    for u in range(kh):
        for v in range(kw):
            c = h[u, v]
            if c != 0:
                out += c * xp[u:u + H, v:v + W]
    return out


def sobel(x: np.ndarray):
    """Sobel responses (X, Y) with the toolbox kernels, ``filter2 'same'``."""
    return filter2_small(SOBEL_X, x), filter2_small(SOBEL_Y, x)


def gauss1d(size: int, sigma: float) -> np.ndarray:
    """1-D factor of MATLAB ``fspecial('gaussian', size, sigma)`` (normalised to sum 1)."""
    r = (size - 1) / 2.0
    t = np.arange(size, dtype=np.float64) - r
    g = np.exp(-(t * t) / (2.0 * sigma * sigma))
    return g / g.sum()


def sep_filter_same(x: np.ndarray, k_rows: np.ndarray, k_cols: np.ndarray | None = None) -> np.ndarray:
    """``filter2(k_rows' * k_cols, x, 'same')`` for a separable odd kernel (zero padding)."""
    k_cols = k_rows if k_cols is None else k_cols
    y = ndimage.correlate1d(x, k_rows, axis=0, mode="constant", cval=0.0)
    return ndimage.correlate1d(y, k_cols, axis=1, mode="constant", cval=0.0)


def sep_filter_valid(x: np.ndarray, k_rows: np.ndarray, k_cols: np.ndarray | None = None) -> np.ndarray:
    """``filter2(k_rows' * k_cols, x, 'valid')`` for a separable odd kernel."""
    k_cols = k_rows if k_cols is None else k_cols
    hr, hc = len(k_rows) // 2, len(k_cols) // 2
    H, W = x.shape
    if H < len(k_rows) or W < len(k_cols):
        raise ValueError(f"image {x.shape} smaller than the {len(k_rows)}x{len(k_cols)} window")
    y = ndimage.correlate1d(x, k_rows, axis=0, mode="constant", cval=0.0)[hr:H - hr]
    return ndimage.correlate1d(y, k_cols, axis=1, mode="constant", cval=0.0)[:, hc:W - hc]


def box_sum_valid(x: np.ndarray, n: int) -> np.ndarray:
    """Sum over every n x n window fully inside x (``filter2(ones(n), x, 'valid')``), via integral
    image: exact on integer-valued data (sums < 2^53); on other data the error grows with the
    running sums (see :func:`box_sum_direct`)."""
    c = np.zeros((x.shape[0] + 1, x.shape[1] + 1))
    np.cumsum(np.cumsum(x, axis=0), axis=1, out=c[1:, 1:])
    return c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]


def box_sum_direct(x: np.ndarray, n: int) -> np.ndarray:
    """``filter2(ones(n), x, 'valid')`` by direct sums: n shifted adds down the rows, then n across.

    Each window sum is formed from its own n*n values, so its round-off is ~1e-16 relative to the
    window's magnitude on any data; :func:`box_sum_valid` differences large running sums, exact
    only on integer data."""
    H, W = x.shape
    rows = x[0:H - n + 1].copy()
    for k in range(1, n):
        rows += x[k:H - n + 1 + k]
    out = rows[:, 0:W - n + 1].copy()
    for k in range(1, n):
        out += rows[:, k:W - n + 1 + k]
    return out


def freqspace_grid(shape):
    """MATLAB ``freqspace([H W], 'meshgrid')``: (u, v), u varying along columns, v along rows."""
    H, W = shape
    fu = (np.arange(W) - W // 2) * (2.0 / W)
    fv = (np.arange(H) - H // 2) * (2.0 / H)
    return np.meshgrid(fu, fv)


def filter_centered_spectrum(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Real part of ``ifft2(ifftshift(fftshift(fft2(x)) .* S))`` (S given on the centred grid)."""
    return np.real(sfft.ifft2(sfft.fft2(x) * np.fft.ifftshift(s)))


def blocks(x: np.ndarray, n: int = 16) -> np.ndarray:
    """``blkproc`` tiling: distinct n x n blocks, partial blocks zero-padded; shape (rows, cols, n, n)."""
    H, W = x.shape
    Hp, Wp = -(-H // n) * n, -(-W // n) * n
    xp = np.zeros((Hp, Wp), dtype=x.dtype)
    xp[:H, :W] = x
    return xp.reshape(Hp // n, n, Wp // n, n).swapaxes(1, 2)


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of a histogram given as counts."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())
