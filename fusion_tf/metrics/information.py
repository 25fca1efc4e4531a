"""Information-theoretic fusion metrics: QMI, MI, Tsallis TE, QNCIE (spec §3.6–3.8).

Ports of the zhengliu6699 ``imageFusionMetrics`` toolbox (``metricMI``, ``tsallis``,
``metricWang``): every image is first ``normalize1``-stretched to integer 0..255 and the
256 x 256 joint histograms are built with one ``bincount`` instead of the toolbox's pixel loops.
"""

from __future__ import annotations

import numpy as np

from .common import check_inputs, normalize1

__all__ = ["qmi", "mi", "te", "te_cvejic", "qncie"]


def _levels(x: np.ndarray) -> np.ndarray:
    return normalize1(x).astype(np.int64)


def _joint(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Joint histogram counts h[i, j] = #(x == i and y == j) over 0..255 levels."""
    return np.bincount((x * 256 + y).ravel(), minlength=65536).reshape(256, 256).astype(np.float64)


def _mi_parts(x, y, log=np.log2):
    """(I(x;y), H(x), H(y)) from the joint histogram, with the given logarithm."""
    h = _joint(x, y)
    p = h / h.sum()

    def ent(q):
        q = q[q > 0]
        return float(-(q * log(q)).sum())

    hx, hy, hxy = ent(p.sum(axis=1)), ent(p.sum(axis=0)), ent(p.ravel())
    return hx + hy - hxy, hx, hy


def qmi(a, b, fused) -> float:
    """Hossny's normalised mutual information Q_MI (toolbox ``metricMI(..., 1)``; spec §3.6).

    ``2 * [I(A,F)/(H(A)+H(F)) + I(B,F)/(H(B)+H(F))]`` on ``normalize1``'d images, entropies in
    bits. This is MFIF-GAN's "MI" and the Liu 2020 survey's QMI (range 0..2; 2 for F = A = B).
    For the unnormalised sum of MIs in nats use :func:`mi`.
    """
    a, b, f = (_levels(x) for x in check_inputs(a, b, fused))
    i_af, h_a, h_f = _mi_parts(a, f)
    i_bf, h_b, h_f2 = _mi_parts(b, f)
    return float(2.0 * (i_af / (h_a + h_f) + i_bf / (h_b + h_f2)))


def mi(a, b, fused) -> float:
    """Plain mutual information MI(A,F) + MI(B,F) in nats (VIFB / CDDFuse-style code; spec §3.6).

    Images are min-max mapped to 0..255 integer bins (``normalize1``). Different scale from
    :func:`qmi`; the two must never be compared.
    """
    a, b, f = (_levels(x) for x in check_inputs(a, b, fused))
    return float(_mi_parts(a, f, np.log)[0] + _mi_parts(b, f, np.log)[0])


def _tsallis(x: np.ndarray, y: np.ndarray, q: float) -> float:
    """Toolbox ``tsallis``: note the crossed marginals (p_Y indexed by x's level), required to
    reproduce published TE values."""
    h = _joint(x, y)
    h /= h.sum()
    p_x = h.sum(axis=1)  # marginal of x (rows)
    p_y = h.sum(axis=0)  # marginal of y (columns)
    den = np.outer(p_y, p_x)  # den[i, j] = p_y(i) * p_x(j)
    ok = den != 0
    s = float((h[ok] ** q / den[ok] ** (q - 1.0)).sum())
    return (1.0 - s) / (1.0 - q)


def te(a, b, fused, q: float = 0.43137) -> float:
    """Tsallis-entropy metric, Nava's normalisation (toolbox ``metricMI(..., 3)``; spec §3.7).

    ``(T(A,F) + T(B,F)) / (H(A)^q + H(B)^q + T(A,B))`` with q = 0.43137 and Shannon H in bits,
    exactly as the toolbox computes it (MFIF-GAN's "TE"). ``q`` is a keyword for experiments;
    :func:`te_cvejic` is the other published variant.
    """
    a, b, f = (_levels(x) for x in check_inputs(a, b, fused))
    _, h_a, h_b = _mi_parts(a, b)
    num = _tsallis(a, f, q) + _tsallis(b, f, q)
    return float(num / (h_a ** q + h_b ** q + _tsallis(a, b, q)))


def te_cvejic(a, b, fused, q: float = 1.85) -> float:
    """Cvejic's Tsallis metric T(A,F) + T(B,F) with q = 1.85 (toolbox ``metricMI(..., 2)``)."""
    a, b, f = (_levels(x) for x in check_inputs(a, b, fused))
    return float(_tsallis(a, f, q) + _tsallis(b, f, q))


def qncie(a, b, fused) -> float:
    """Nonlinear correlation information entropy Q_NCIE (toolbox ``metricWang``; spec §3.8).

    NCC(X,Y) = I(X;Y)/log2(256) from 256-bin histograms of the ``normalize1``'d images; the
    eigenvalues r of the 3x3 NCC matrix give H_R = -sum (r/3) log2(r/3) / log2(256) and
    QNCIE = 1 - H_R. Used by GACN, MFIF-GAN and the Liu 2020 survey.
    """
    a, b, f = (_levels(x) for x in check_inputs(a, b, fused))
    n_ab = _mi_parts(a, b)[0] / 8.0
    n_af = _mi_parts(a, f)[0] / 8.0
    n_bf = _mi_parts(b, f)[0] / 8.0
    r = np.linalg.eigvalsh(np.array([[1.0, n_ab, n_af], [n_ab, 1.0, n_bf], [n_af, n_bf, 1.0]]))
    r = r[r > 0]
    h_r = -float((r / 3.0 * np.log2(r / 3.0)).sum()) / 8.0
    return 1.0 - h_r
