"""Per-image agreement with the Liu et al. 2020 survey's published MATLAB scores (spec §5.1).

``Q_grayscale.mat`` holds ``Q`` of shape (18 methods, 8 metrics, 10 grey pairs), metric order
QMI, QNCIE, QG (= ``qabf``), QP, QE, QY, QCB, QCV. Sources ``data/grayscale/g_NN_{1,2}.tif``, fused
``reference/metrics/liu2020/g_NN_<method>.tif``.

Tolerances (spec §5.1): 1e-9 absolute for QMI, QNCIE, QG, QCB and QP, 1e-9 relative for QCV,
5e-5 for QE. QY (two-pass ``qy``): 1e-3 on every image except **g_03**, whose large flat and
saturated regions make the reference's one-pass variances platform noise (its published values
are off by up to 4.4e-3 from the stable form and by up to 970 from a literal NumPy port; spec
§3.10). g_04 (7.2e-4) also has saturated areas but stays within 1e-3.

The default run checks every image for a few methods (QP on the small g_10 for all methods and
on g_01 for two); the full 18 x 10 sweep is marked ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from PIL import Image

from fusion_tf import metrics as M

METHODS = ("dwt dtcwt nsct gff sr asr mwgf ica nsct-sr sssdi quadtree dsift srcf gfdf brw misf cnn "
           "madcnn").split()
COLUMNS = ("qmi", "qncie", "qabf", "qp", "qe", "qy", "qcb", "qcv")
IMAGES = range(1, 11)
QY_EXCLUDED = {3}  # flat/saturated regions: the published value is round-off noise there
TOL = {"qmi": 1e-9, "qncie": 1e-9, "qabf": 1e-9, "qcb": 1e-9, "qp": 1e-9, "qe": 5e-5, "qy": 1e-3}
SUBSET = ("dwt", "gff", "cnn")
CHEAP = ("qmi", "qncie", "qabf", "qe", "qcb", "qcv")


@pytest.fixture(scope="module")
def liu(shared):
    root = shared / "reference" / "metrics" / "liu2020"
    q = scipy.io.loadmat(root / "Q_grayscale.mat")["Q"]
    assert q.shape == (len(METHODS), len(COLUMNS), len(IMAGES))
    cache: dict = {}

    def load(path):
        if path not in cache:
            cache[path] = np.asarray(Image.open(path), dtype=np.float64)
            assert cache[path].ndim == 2
        return cache[path]

    def triple(n, method):
        src = shared / "data" / "grayscale"
        return (load(src / f"g_{n:02d}_1.tif"), load(src / f"g_{n:02d}_2.tif"),
                load(root / f"g_{n:02d}_{method}.tif"))

    def published(metric, n, method):
        return float(q[METHODS.index(method), COLUMNS.index(metric), n - 1])

    return triple, published


def _check(liu, metrics, n, methods):
    triple, published = liu
    bad = []
    for method in methods:
        a, b, f = triple(n, method)
        for mid in metrics:
            got, ref = M.METRICS[mid](a, b, f), published(mid, n, method)
            err = abs(got - ref) / abs(ref) if mid == "qcv" else abs(got - ref)
            if not err <= TOL.get(mid, 1e-9):
                bad.append(f"{mid} g_{n:02d} {method}: {got!r} vs published {ref!r} (err {err:.2e})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("n", IMAGES)
def test_cheap_metrics_subset(liu, n):
    _check(liu, CHEAP, n, SUBSET)


@pytest.mark.parametrize("n", [n for n in IMAGES if n not in QY_EXCLUDED])
def test_qy_subset(liu, n):
    _check(liu, ("qy",), n, SUBSET)


def test_qp_small_image_all_methods(liu):
    _check(liu, ("qp",), 10, METHODS)


def test_qp_full_size(liu):
    _check(liu, ("qp",), 1, ("dwt", "cnn"))


def test_qy_excluded_image_is_documented_noise(liu):
    """g_03: the stable two-pass QY stays within the spec's reported 4.4e-3 of the published values."""
    triple, published = liu
    for method in SUBSET:
        assert abs(M.qy(*triple(3, method)) - published("qy", 3, method)) < 5e-3


@pytest.mark.slow
@pytest.mark.parametrize("n", IMAGES)
def test_full_sweep(liu, n):
    metrics = [m for m in COLUMNS if not (m == "qy" and n in QY_EXCLUDED)]
    _check(liu, metrics, n, METHODS)
