"""Human-visual-system fusion metrics: Chen–Blum Q_CB, Chen–Varshney Q_CV, Han's VIFF, VIF sum.

Spec §3.11, §3.12, §3.17. CSF filtering is done in the frequency domain on MATLAB's
``freqspace`` grid, keeping the real part, exactly as the toolbox does.
"""

from __future__ import annotations

import numpy as np

from .common import (blocks, check_inputs, filter_centered_spectrum, freqspace_grid, gauss1d,
                     normalize1, sep_filter_same, sep_filter_valid, sobel)

__all__ = ["qcb", "qcv", "viff", "vif_sum"]


def _unnormalised_gauss31(sigma):
    """1-D factor of the toolbox's 31x31 G = exp(-(x^2+y^2)/(2 s^2))/(2 pi s^2) (not normalised)."""
    t = np.arange(-15, 16, dtype=np.float64)
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    return g, 1.0 / (2 * np.pi * sigma * sigma)


def qcb(a, b, fused) -> float:
    """Chen–Blum metric Q_CB (toolbox ``metricChenBlum``; GACN, MFIF-GAN, Liu 2020).

    ``normalize1`` all three; DoG contrast-sensitivity filter
    S(r) = exp(-(r/15.3870)^2) - 0.7622 exp(-(r/1.3456)^2) with r on freqspace scaled by W/30,
    H/30; local contrast |G_2*I / G_4*I - 1| with unnormalised 31x31 Gaussians; masked contrast
    C' = C^3/(C^2 + 1e-4); Q = mean(lambda_A Q_AF + lambda_B Q_BF) with lambda from C'^2.
    """
    a, b, f = check_inputs(a, b, fused)
    H, W = f.shape
    u, v = freqspace_grid((H, W))
    r = np.sqrt((u * W / 30.0) ** 2 + (v * H / 30.0) ** 2)
    S = np.exp(-(r / 15.3870) ** 2) - 0.7622 * np.exp(-(r / 1.3456) ** 2)
    g2, s2 = _unnormalised_gauss31(2.0)
    g4, s4 = _unnormalised_gauss31(4.0)

    def masked_contrast(x):
        y = filter_centered_spectrum(normalize1(x), S)
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.abs((sep_filter_same(y, g2) * s2) / (sep_filter_same(y, g4) * s4) - 1.0)
            return c ** 3 / (c ** 2 + 1e-4)

    ca, cb, cf = masked_contrast(a), masked_contrast(b), masked_contrast(f)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_af = np.where(ca < cf, ca / cf, cf / ca)
        q_bf = np.where(cb < cf, cb / cf, cf / cb)
        den = ca * ca + cb * cb
        q = (ca * ca / den) * q_af + (cb * cb / den) * q_bf
    return float(q.mean())


def qcv(a, b, fused, window: int = 16, alpha: float = 5.0) -> float:
    """Chen–Varshney metric Q_CV (toolbox ``metricChen``; Liu 2020). **Lower is better.**

    ``normalize1`` all three; block saliency lambda_S = sum over 16x16 blocks of g_S^alpha (Sobel
    magnitude, alpha = 5 as in the toolbox); D_S = block mean of the squared Mannos–Sakrison
    CSF-filtered difference S - F (r scaled by W/8, H/8); Q = sum(lambda_A D_A + lambda_B D_B) /
    sum(lambda_A + lambda_B). Partial blocks are zero-padded like ``blkproc``.
    """
    a, b, f = check_inputs(a, b, fused)
    a, b, f = normalize1(a), normalize1(b), normalize1(f)
    H, W = f.shape
    u, v = freqspace_grid((H, W))
    r = np.sqrt((u * W / 8.0) ** 2 + (v * H / 8.0) ** 2)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-(0.144 * r) ** 1.1)

    def saliency(x):
        gx, gy = sobel(x)
        return np.sqrt(gx * gx + gy * gy) ** alpha

    lam_a = blocks(saliency(a), window).sum(axis=(2, 3))
    lam_b = blocks(saliency(b), window).sum(axis=(2, 3))
    d_a = (blocks(filter_centered_spectrum(a - f, csf), window) ** 2).mean(axis=(2, 3))
    d_b = (blocks(filter_centered_spectrum(b - f, csf), window) ** 2).mean(axis=(2, 3))
    return float((lam_a * d_a + lam_b * d_b).sum() / (lam_a + lam_b).sum())


# --------------------------------------------------------------------------- VIF family
def _vif_scales(ref, dist, sigma_nsq):
    """Per-scale (VID map, VIND map, gain map) of Sheikh–Bovik's pixel-domain VIF as revised in
    Han's ``ComVidVindG`` (4 scales, Gaussian windows N = 2^(5-s)+1, sigma N/5, 'valid')."""
    out = []
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        g = gauss1d(n, n / 5.0)
        if scale > 1:
            ref = sep_filter_valid(ref, g)[::2, ::2]
            dist = sep_filter_valid(dist, g)[::2, ::2]
        mu1, mu2 = sep_filter_valid(ref, g), sep_filter_valid(dist, g)
        s1 = np.maximum(sep_filter_valid(ref * ref, g) - mu1 * mu1, 0.0)
        s2 = np.maximum(sep_filter_valid(dist * dist, g) - mu2 * mu2, 0.0)
        s12 = sep_filter_valid(ref * dist, g) - mu1 * mu2
        gain = s12 / (s1 + 1e-10)
        sv = s2 - gain * s12
        low1 = s1 < 1e-10
        gain[low1] = 0.0
        sv[low1] = s2[low1]
        s1[low1] = 0.0
        low2 = s2 < 1e-10
        gain[low2] = 0.0
        sv[low2] = 0.0
        neg = gain < 0
        sv[neg] = s2[neg]
        gain[neg] = 0.0
        sv[sv <= 1e-10] = 1e-10
        vid = np.log10(1.0 + gain * gain * s1 / (sv + sigma_nsq))
        vind = np.log10(1.0 + s1 / sigma_nsq)
        out.append((vid, vind, gain))
    return out


def viff(a, b, fused, weights=(1.0, 0.0, 0.15, 1.0)) -> float:
    """Han et al. 2013 visual-information-fidelity fusion metric VIFF (``VIFF_Public``).

    Per scale the source with the smaller VIF gain at each position supplies (VID, VIND);
    F_s = sum(VID + C)/sum(VIND + C), C = 1e-7; VIFF = sum p_s F_s with p = (1, 0, 0.15, 1)/2.15,
    visual noise 0.005 * 255^2. Grey input (the colour path of the original uses the Lab L channel;
    here colour is reduced by the shared rgb2gray rule like every other metric).
    """
    a, b, f = check_inputs(a, b, fused)
    sq = 0.005 * 255 * 255
    s_a = _vif_scales(a, f, sq)
    s_b = _vif_scales(b, f, sq)
    p = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    total = 0.0
    for i, ((z1, m1, g1), (z2, m2, g2)) in enumerate(zip(s_a, s_b)):
        take1 = g1 < g2
        z = np.where(take1, z1, z2)
        m = np.where(take1, m1, m2)
        total += p[i] * float((z + 1e-7).sum() / (m + 1e-7).sum())
    return float(total)


def vif_sum(a, b, fused) -> float:
    """VIF(A,F) + VIF(B,F), Sheikh–Bovik pixel-domain multiscale VIF (``vifp_mscale``, 4 scales,
    sigma_n^2 = 2) — MFF-GAN's "VIF" (inferred from its values > 1; spec §3.17)."""
    a, b, f = check_inputs(a, b, fused)
    total = 0.0
    for src in (a, b):
        sc = _vif_scales(src, f, 2.0)
        total += sum(float(v.sum()) for v, _, _ in sc) / sum(float(d.sum()) for _, d, _ in sc)
    return float(total)
