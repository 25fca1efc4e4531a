"""Image statistics used as fusion metrics: EN, SD, SF, AG, CC, SCD, PSNR, LIF, MSD, GLD.

Spec §3.1–3.5 and §3.18. EN, SD, SF, AG, LIF, MSD and GLD are no-reference (they ignore the
sources); CC, SCD and PSNR compare F with both sources.
"""

from __future__ import annotations

import numpy as np

from .common import check_inputs, entropy_bits, matlab_round

__all__ = ["en", "sd", "sd_liu2024", "sf", "sf_meandiff", "ag", "ag_vifb", "cc", "scd", "psnr",
           "lif", "msd", "gld"]


def _fused(fused):
    return check_inputs(None, None, fused, need_sources=False)[2]


def en(a, b, fused) -> float:
    """Entropy (bits) of the 256-bin histogram of the uint8 fused image (spec §3.1)."""
    f = np.clip(matlab_round(_fused(fused)), 0, 255).astype(np.int64)
    return entropy_bits(np.bincount(f.ravel(), minlength=256).astype(np.float64))


def sd(a, b, fused, variant: str = "population") -> float:
    """Standard deviation of F. ``variant="population"`` (default; GIPC Eq. 22, VIFB):
    sqrt(sum (F - mean)^2 / (M N)); ``"liu2024"``: mean over columns of each column's sample
    (N-1) std (= :func:`sd_liu2024`). MFF-GAN's table reports the population value / 255."""
    f = _fused(fused)
    if variant == "population":
        return float(f.std())
    if variant == "liu2024":
        return float(f.std(axis=0, ddof=1).mean())
    raise ValueError(f"unknown SD variant {variant!r}; use 'population' or 'liu2024'")


def sd_liu2024(a, b, fused) -> float:
    """Mean over columns of the sample (N-1) standard deviation of each column (Liu 2024 code)."""
    return sd(a, b, fused, "liu2024")


def sf(a, b, fused, variant: str = "mn") -> float:
    """Spatial frequency sqrt(RF^2 + CF^2). ``variant="mn"`` (default; GIPC Eq. 21, VIFB,
    Liu 2024): both squared-difference sums divided by M*N; ``"meandiff"``: each divided by its
    own count M(N-1), (M-1)N (= :func:`sf_meandiff`). MFF-GAN's table reports sf/255. Spec §3.3."""
    f = _fused(fused)
    dx = np.diff(f, axis=1)
    dy = np.diff(f, axis=0)
    if variant == "mn":
        return float(np.sqrt(((dx * dx).sum() + (dy * dy).sum()) / f.size))
    if variant == "meandiff":
        return float(np.sqrt((dx * dx).mean() + (dy * dy).mean()))
    raise ValueError(f"unknown SF variant {variant!r}; use 'mn' or 'meandiff'")


def sf_meandiff(a, b, fused) -> float:
    """Spatial frequency with each sum divided by its own count (M(N-1), (M-1)N)."""
    return sf(a, b, fused, "meandiff")


def ag(a, b, fused, variant: str = "liu2024") -> float:
    """Average gradient. ``variant="liu2024"`` (default; spec §3.4): forward differences with
    replicate border (last row/column difference 0), mean over M*N of sqrt((gx^2 + gy^2)/2).
    ``"vifb"``: MATLAB ``gradient`` (central differences inside, one-sided at the borders),
    sum sqrt((gx^2 + gy^2)/2) / ((M-1)(N-1)) (= :func:`ag_vifb`).
    MFIF-GAN's AG uses an unknown definition (about 0.37 x the default)."""
    f = _fused(fused)
    if variant == "liu2024":
        gx = np.zeros_like(f)
        gy = np.zeros_like(f)
        gx[:, :-1] = np.diff(f, axis=1)
        gy[:-1, :] = np.diff(f, axis=0)
        return float(np.sqrt((gx * gx + gy * gy) / 2.0).mean())
    if variant == "vifb":
        gy, gx = np.gradient(f)
        M, N = f.shape
        return float(np.sqrt((gx * gx + gy * gy) / 2.0).sum() / ((M - 1) * (N - 1)))
    raise ValueError(f"unknown AG variant {variant!r}; use 'liu2024' or 'vifb'")


def ag_vifb(a, b, fused) -> float:
    """Average gradient, VIFB variant (MATLAB ``gradient``); see :func:`ag`."""
    return ag(a, b, fused, "vifb")


def _corr(x, y) -> float:
    """Pearson correlation over all pixels (MATLAB ``corr2``); 0 when either image is constant."""
    x = x - x.mean()
    y = y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0


def cc(a, b, fused) -> float:
    """Correlation coefficient 0.5 r(A,F) + 0.5 r(B,F) (GIPC Eq. 23; weights unspecified there,
    so equal)."""
    a, b, f = check_inputs(a, b, fused)
    return 0.5 * (_corr(a, f) + _corr(b, f))


def scd(a, b, fused) -> float:
    """Sum of the correlations of differences r(F - B, A) + r(F - A, B) (Aslantas & Bendes;
    MFF-GAN)."""
    a, b, f = check_inputs(a, b, fused)
    return _corr(f - b, a) + _corr(f - a, b)


def psnr(a, b, fused, peak: float = 255.0) -> float:
    """Fusion PSNR = 10 log10(peak^2 / MSE), MSE = (MSE(A,F) + MSE(B,F))/2 (VIFB / Liu 2024
    definition). ``inf`` when F equals both sources."""
    a, b, f = check_inputs(a, b, fused)
    mse = 0.5 * (float(((a - f) ** 2).mean()) + float(((b - f) ** 2).mean()))
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak * peak / mse))


def lif(a, b, fused) -> float:
    """Linear index of fuzziness (Bai, Zhou & Xue 2012; MFIF-GAN's "LIF"; **lower is better**).

    No public code exists; implemented from the paper's definition:
    gamma = 2/(MN) sum min(p, 1 - p) with membership p = sin(pi/2 (1 - F/F_max)), F_max the
    maximum grey level of F. Range 0..1. MFIF-GAN's values could not be reproduced (spec §3.18).
    """
    f = _fused(fused)
    fmax = float(f.max())
    if fmax <= 0:
        return 0.0
    p = np.sin(np.pi / 2.0 * (1.0 - f / fmax))
    return float(2.0 * np.minimum(p, 1.0 - p).mean())


def msd(a, b, fused) -> float:
    """Mean square deviation (Zhao, Wang & Lu 2018 as cited by MFIF-GAN). No public code exists;
    read as the mean squared deviation of F from its mean on the [0, 1] intensity scale,
    mean((F/255 - mean(F/255))^2). MFIF-GAN's values could not be reproduced (spec §3.18)."""
    f = _fused(fused) / 255.0
    return float(((f - f.mean()) ** 2).mean())


def gld(a, b, fused) -> float:
    """Grey-level difference (Zhao, Wang & Lu 2018 as cited by MFIF-GAN). No public code exists;
    read as the mean absolute grey-level difference of each pixel to its 4-neighbours,
    sum(|F(i,j) - F(i,j+1)| + |F(i,j) - F(i+1,j)|) / ((M-1)(N-1)). MFIF-GAN's values could not
    be reproduced (spec §3.18)."""
    f = _fused(fused)
    M, N = f.shape
    return float((np.abs(np.diff(f, axis=1)).sum() + np.abs(np.diff(f, axis=0)).sum())
                 / ((M - 1) * (N - 1)))
