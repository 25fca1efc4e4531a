"""Fusion quality metrics that reproduce the published MATLAB scores (spec ``metrics.md``).

Every metric is a plain function ``metric(a, b, fused) -> float`` on grey images holding 0..255
values (float or uint8; never pre-scaled). Colour inputs are reduced with MATLAB's ``rgb2gray``
rule (:func:`rgb2gray`) before any metric, as the reference scripts do. Everything is
NumPy/SciPy float64; this package never imports TensorFlow.

``METRICS`` maps each id to its function, ``INFO`` holds the metadata (direction, whether the
sources are needed, the variant), ``DEFAULT_METRICS`` is the set ``fusion-tf evaluate`` reports,
and :func:`compute` evaluates several ids on one image triple.

Sources: the metrics are defined for exactly two source images (the spec gives no rule for
more). :func:`compute_sources` accepts a list of sources and raises ``ValueError`` for a list
of length != 2 unless only no-reference metrics (``needs_sources=False``) are asked for.

Flat (constant) windows - which reference each default follows (issue #16):

* ``fmi_pixel``, ``fmi_edge``, ``fmi_dct``: the authors' ``fmi.m`` (mhaghighat/fmi). B's
  window is compared with the fused window *as the A pass left it* (normalised unless A's window
  equalled it): ``compare_normalised=True`` (``False``: compare with the raw fused window, the
  previous default). A pair of constant windows scores what MATLAB's arithmetic gives, 1
  (left-to-right ``mean`` of nine 1/9 leaves a residue, so c = 1), independent of memory order.
  Only ``fmi_pixel`` moves; on binary edge maps and DCT coefficients both settings agree to
  round-off (GACN's published FMI_EDGE/FMI_DCT checks are unchanged).
* ``qy`` (stable variant), ``qc``: exact two-pass variances; a window constant in an image
  (max == min) has variance and covariances with it exactly 0, so Liu 2020's
  sigma_A^2 + sigma_B^2 == 0 guard (lambda = 0.5) applies as written. ``qy_onepass`` stays the
  literal ``metricYang`` port, unstable there by design (spec §3.10).
* ``qe``, ``qw``, ``qs``: 8x8 window sums formed directly, as MATLAB's ``filter2`` does (Liu
  2020 code under GNU Octave to ~2e-15); ``qe(..., integral=True)`` keeps the integral-image sums,
  exact on grey images but up to ~2e-6 off on Q_E's non-integer edge images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from .common import as_gray, matlab_round, normalize1, rgb2gray
from .feature_mi import fmi, fmi_dct, fmi_edge, fmi_pixel
from .gradient import qabf, qg_toolbox, qm, qsf
from .information import mi, qmi, qncie, te, te_cvejic
from .perceptual import qcb, qcv, vif_sum, viff
from .phase import qp
from .statistics import (ag, ag_vifb, cc, en, gld, lif, msd, psnr, scd, sd, sd_liu2024, sf,
                         sf_meandiff)
from .structural import ms_ssim, qc, qe, qs, qw, qy, qy_onepass, ssim


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of one metric id."""

    id: str
    func: Callable
    higher_is_better: bool
    needs_sources: bool
    title: str


def _m(id_, func, title, higher=True, sources=True):
    return MetricInfo(id_, func, higher, sources, title)


_ALL = [
    # statistics (no reference)
    _m("en", en, "entropy (bits)", sources=False),
    _m("sd", sd, "standard deviation (population)", sources=False),
    _m("sf", sf, "spatial frequency", sources=False),
    _m("ag", ag, "average gradient (Liu 2024)", sources=False),
    _m("lif", lif, "linear index of fuzziness (Bai 2012)", higher=False, sources=False),
    _m("msd", msd, "mean square deviation (reading of Zhao 2018)", sources=False),
    _m("gld", gld, "grey-level difference (reading of Zhao 2018)", sources=False),
    # source-referenced statistics
    _m("cc", cc, "correlation coefficient"),
    _m("scd", scd, "sum of correlations of differences"),
    _m("psnr", psnr, "PSNR against both sources"),
    # information theory
    _m("mi", mi, "MI(A,F)+MI(B,F), nats"),
    _m("qmi", qmi, "Hossny normalised MI"),
    _m("te", te, "Tsallis MI, Nava normalisation (q=0.43137)"),
    _m("qncie", qncie, "nonlinear correlation information entropy"),
    _m("fmi_edge", fmi_edge, "fast-FMI, Sobel edge features"),
    _m("fmi_dct", fmi_dct, "fast-FMI, DCT features"),
    _m("fmi_pixel", fmi_pixel, "fast-FMI, pixel features"),
    # gradient / feature
    _m("qabf", qabf, "Q^AB/F, Xydeas-Petrovic constants (Liu 2020)"),
    _m("qg_toolbox", qg_toolbox, "Q^AB/F, zhengliu toolbox (GACN, MFIF-GAN)"),
    _m("qsf", qsf, "Zheng spatial-frequency metric (0 ideal)"),
    _m("qm", qm, "Wang-Liu multiscale metric"),
    _m("qp", qp, "Zhao phase-congruency metric"),
    # structural
    _m("ssim", ssim, "mean SSIM(A,F), SSIM(B,F)"),
    _m("ms_ssim", ms_ssim, "mean MS-SSIM(A,F), MS-SSIM(B,F)"),
    _m("qy", qy, "Yang SSIM-based metric (two-pass variances)"),
    _m("qc", qc, "Cvejic metric"),
    _m("qs", qs, "Piella Q_S"),
    _m("qw", qw, "Piella weighted Q_W"),
    _m("qe", qe, "Piella edge-dependent Q_E"),
    # perceptual
    _m("qcb", qcb, "Chen-Blum metric"),
    _m("qcv", qcv, "Chen-Varshney metric", higher=False),
    _m("viff", viff, "Han VIF fusion metric"),
    # variants reachable by id but not in the default report
    _m("sd_liu2024", sd_liu2024, "SD, mean of column sample SDs", sources=False),
    _m("sf_meandiff", sf_meandiff, "SF, per-count normalisation", sources=False),
    _m("ag_liu2024", ag, "average gradient (Liu 2024) = ag", sources=False),
    _m("ag_vifb", ag_vifb, "average gradient (VIFB)", sources=False),
    _m("te_cvejic", te_cvejic, "Tsallis MI, Cvejic (q=1.85)"),
    _m("qy_onepass", qy_onepass, "Yang metric, literal one-pass port"),
    _m("vif_sum", vif_sum, "VIF(A,F)+VIF(B,F), Sheikh-Bovik"),
]

INFO: dict[str, MetricInfo] = {m.id: m for m in _ALL}
METRICS: dict[str, Callable] = {m.id: m.func for m in _ALL}
#: ids written by ``fusion-tf evaluate`` when ``--metrics`` is not given (variants excluded).
DEFAULT_METRICS: tuple[str, ...] = tuple(m.id for m in _ALL[: [m.id for m in _ALL].index("viff") + 1])
HIGHER_IS_BETTER = {k: v.higher_is_better for k, v in INFO.items()}
NEEDS_SOURCES = {k: v.needs_sources for k, v in INFO.items()}


def clear_caches() -> None:
    """Forget cached per-image features (the sources' phase congruency kept by ``qp``)."""
    from .phase import _PC_CACHE

    _PC_CACHE.clear()


def resolve(ids: Iterable[str] | str | None) -> list[str]:
    """Validate metric ids (comma-separated string or iterable); ``None`` -> defaults."""
    if ids is None:
        return list(DEFAULT_METRICS)
    if isinstance(ids, str):
        ids = [s.strip() for s in ids.split(",") if s.strip()]
    ids = list(dict.fromkeys(ids))
    unknown = [i for i in ids if i not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; valid: {', '.join(METRICS)}")
    if not ids:
        raise ValueError("no metric requested")
    return ids


def compute(ids, a, b, fused) -> dict[str, float]:
    """Evaluate the metric ids on one triple; colour is converted once with :func:`rgb2gray`."""
    ids = resolve(ids)
    f = as_gray(fused)
    a = None if a is None else as_gray(a)
    b = None if b is None else as_gray(b)
    return {i: float(METRICS[i](a, b, f)) for i in ids}


def compute_sources(ids, sources: Sequence, fused) -> dict[str, float]:
    """Like :func:`compute` with the sources as a list. Source-referenced metrics are defined for
    two sources only; other counts raise ``ValueError`` unless all ids are no-reference."""
    ids = resolve(ids)
    if len(sources) != 2:
        bad = [i for i in ids if NEEDS_SOURCES[i]]
        if bad:
            raise ValueError(
                f"metrics {', '.join(bad)} are defined for 2 source images, got {len(sources)}; "
                "choose no-reference metrics only (" +
                ", ".join(k for k, v in NEEDS_SOURCES.items() if not v) + ")")
        return compute(ids, None, None, fused)
    return compute(ids, sources[0], sources[1], fused)


__all__ = ["METRICS", "INFO", "MetricInfo", "DEFAULT_METRICS", "HIGHER_IS_BETTER",
           "NEEDS_SOURCES", "compute", "compute_sources", "resolve", "clear_caches", "rgb2gray", "as_gray",
           "matlab_round", "normalize1", "fmi"] + list(METRICS)
