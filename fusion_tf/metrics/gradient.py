"""Gradient / edge based fusion metrics: Q^{AB/F} (two variants), Zheng's SF metric, Wang–Liu Q_M.

Spec §3.9, §3.14, §3.15. Q^{AB/F} exists in two incompatible published forms; both are
available under their own ids and the constants of either can be chosen by keyword.
"""

from __future__ import annotations

import numpy as np

from .common import check_inputs, sobel

__all__ = ["qabf", "qg_toolbox", "qsf", "qm"]

# (Gamma_g, k_g, sigma_g, Gamma_a, k_a, sigma_a)
TOOLBOX_CONSTANTS = (1.0, -10.0, 0.5, 1.0, -20.0, 0.75)
PAPER_CONSTANTS = (0.9994, -15.0, 0.5, 0.9879, -22.0, 0.8)


def _grad_angle(x: np.ndarray):
    gx, gy = sobel(x)
    g = np.sqrt(gx * gx + gy * gy)
    gx = np.where(gx == 0, gx + 1e-5, gx)
    return g, np.arctan(gy / gx)  # atan, not atan2, as in both MATLAB codes


def _qabf_core(a, b, f, constants, toolbox_orientation: bool, mean_of_ratios: bool) -> float:
    gam_g, k_g, s_g, gam_a, k_a, s_a = constants
    g_a, al_a = _grad_angle(a)
    g_b, al_b = _grad_angle(b)
    g_f, al_f = _grad_angle(f)

    def preservation(g_s, al_s, g_f):
        # Exactly the MATLAB sequence: the 1e-5 zero guards are applied in place, and g_F's guard
        # persists into the second source's pass.
        bimap = g_s > g_f
        g_s = np.where(g_s == 0, 1e-5, g_s)
        r1 = g_f / g_s
        g_f = np.where(g_f == 0, 1e-5, g_f)
        r2 = g_s / g_f
        G = np.where(bimap, r1, r2)
        d = np.abs(al_s - al_f)
        A = np.abs(d - np.pi / 2) * (2 / np.pi) if toolbox_orientation else 1.0 - d * (2 / np.pi)
        Qg = gam_g / (1.0 + np.exp(k_g * (G - s_g)))
        Qa = gam_a / (1.0 + np.exp(k_a * (A - s_a)))
        return Qg * Qa, g_s, g_f

    q_af, w_a, g_f = preservation(g_a, al_a, g_f)
    q_bf, w_b, g_f = preservation(g_b, al_b, g_f)
    num = q_af * w_a + q_bf * w_b
    den = w_a + w_b
    if mean_of_ratios:
        return float(np.mean(num / den))
    return float(num.sum() / den.sum())


def qg_toolbox(a, b, fused, constants=TOOLBOX_CONSTANTS) -> float:
    """Q^{AB/F} as in the zhengliu toolbox ``metricXydeas`` (2017) — GACN's and MFIF-GAN's "Q_G".

    Sobel gradients, orientation term ``||a_S - a_F| - pi/2| * 2/pi``, sigmoid constants
    (1, -10, 0.5) / (1, -20, 0.75) and **mean of per-pixel** weighted ratios (weights = g_S).
    Spec §3.9; ``constants`` = (Gamma_g, k_g, sigma_g, Gamma_a, k_a, sigma_a).
    """
    a, b, f = check_inputs(a, b, fused)
    return _qabf_core(a, b, f, constants, toolbox_orientation=True, mean_of_ratios=True)


def qabf(a, b, fused, constants=PAPER_CONSTANTS) -> float:
    """Q^{AB/F} with Xydeas–Petrović's paper constants (Liu 2020 survey's corrected code, "QG").

    Orientation term ``1 - |a_S - a_F| * 2/pi``, constants (0.9994, -15, 0.5) / (0.9879, -22, 0.8),
    ratio-of-sums pooling ``sum(Q_AF w_A + Q_BF w_B) / sum(w_A + w_B)`` (weights = g_S). This is
    the variant MFF-GAN / GIPC-GAN's equations describe. Spec §3.9.
    """
    a, b, f = check_inputs(a, b, fused)
    return _qabf_core(a, b, f, constants, toolbox_orientation=False, mean_of_ratios=False)


def _dir_diffs(x: np.ndarray):
    """Horizontal, vertical, main-diagonal and secondary-diagonal neighbour differences."""
    return (x[:, :-1] - x[:, 1:], x[:-1, :] - x[1:, :],
            x[1:, 1:] - x[:-1, :-1], x[1:, :-1] - x[:-1, 1:])


def qsf(a, b, fused) -> float:
    """Zheng's spatial-frequency metric rSFe (toolbox ``metricZheng``; MFIF-GAN's "SF").

    SF_F from the four directional frequencies of F (diagonals weighted by sqrt(2)/2, all sums
    divided by M*N); the reference SF_R uses max(|d_A|, |d_B|) per pixel and direction.
    Returns (SF_F - SF_R)/SF_R: 0 is ideal, negative means detail lost. Spec §3.14.
    """
    a, b, f = check_inputs(a, b, fused)
    n = f.size
    w = (1.0, 1.0, np.sqrt(2) / 2, np.sqrt(2) / 2)
    sf_f = np.sqrt(sum(wk * float((d * d).sum()) / n for wk, d in zip(w, _dir_diffs(f))))
    sf_r = np.sqrt(sum(wk * float((np.maximum(np.abs(da), np.abs(db)) ** 2).sum()) / n
                       for wk, da, db in zip(w, _dir_diffs(a), _dir_diffs(b))))
    return float((sf_f - sf_r) / sf_r)


def _haar_level(x: np.ndarray):
    """One level of matlabPyrTools ``buildWpyr(x, 1, 'haar')`` (pure-M ``corrDn``, 'reflect1').

    With the 2-tap filter and start index 2 the samples pair rows (1,2), (3,4), ...; an odd last
    row/column is dropped. Returns (low, [lohi, hilo, hihi]); the filter sign convention does not
    matter for Q_M, which only uses squares and differences of like bands.
    """
    H, W = x.shape
    x = x[: H - H % 2, : W - W % 2]
    s = 1.0 / np.sqrt(2.0)
    lo = (x[0::2] + x[1::2]) * s
    hi = (x[1::2] - x[0::2]) * s
    lolo = (lo[:, 0::2] + lo[:, 1::2]) * s
    lohi = (hi[:, 0::2] + hi[:, 1::2]) * s
    hilo = (lo[:, 1::2] - lo[:, 0::2]) * s
    hihi = (hi[:, 1::2] - hi[:, 0::2]) * s
    return lolo, (lohi, hilo, hihi)


def qm(a, b, fused, levels: int = 2, alphas=(2.0 / 3.0, 1.0 / 3.0)) -> float:
    """Wang–Liu multiscale edge-preservation metric Q_M (toolbox ``metricPWW``; MFIF-GAN's "Q_M").

    Two-level Haar pyramid; per level W_S = H_S^2 + V_S^2 + D_S^2 and
    EP_S = sum over bands exp(-|band_S - band_F|); Q_l = sum(EP_A W_A + EP_B W_B)/sum(W_A + W_B);
    Q_M = prod Q_l^alpha_l (2/3, 1/3). Spec §3.15.
    """
    a, b, f = check_inputs(a, b, fused)
    q = 1.0
    for lvl in range(levels):
        a, ba = _haar_level(a)
        b, bb = _haar_level(b)
        f, bf = _haar_level(f)
        w_a = sum(x * x for x in ba)
        w_b = sum(x * x for x in bb)
        ep_a = sum(np.exp(-np.abs(x - y)) for x, y in zip(ba, bf))
        ep_b = sum(np.exp(-np.abs(x - y)) for x, y in zip(bb, bf))
        q_l = float((ep_a * w_a + ep_b * w_b).sum() / (w_a + w_b).sum())
        q *= q_l ** alphas[lvl]
    return float(q)
