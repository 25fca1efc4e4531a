"""Quality on the default path (issue 13, A): ``fusion-tf fuse --model M A B -o F`` with NO
``--weights`` — exactly what a user runs — must give the shipped checkpoint's quality on held-out
pairs.  A default path that silently loads nothing (a randomly initialised network) fails here.

Every floor below is set from values measured on this project's CPU (AMD EPYC, TF 2.21, oneDNN on,
the package default) and sits far above what a randomly initialised network scores (measured with the model's
own initialisers, via ``--weights`` pointing to a freshly built, untrained network).  The margins
(≥ 0.01 below the measured value) absorb engine noise many times over: a 1e-6 change of a raw output
moves a fused uint8 pixel by one grey level only at a rounding near-tie, and even 0.5 % of the pixels
off by one moves ``qabf``/``qg_toolbox`` by < 5e-4 (measured).

Held-out pairs only: no Lytro, grayscale-set or gacn_test26 image was used to train any shipped
checkpoint (checkpoints/*/README.md, "Leakage"), and MFF-GAN's selection used the even Lytro pairs;
here the odd ones are used.  Scores: :func:`fusion_tf.metrics.compute` on the images as read from
disk (colour → MATLAB ``rgb2gray``), the report's rule.

Runtime ≈ 20 s on 2 cores (MFIF-GAN, ~13 s for a 520² pair, runs on one 256² crop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusion_tf import metrics as M
from fusion_tf.cli import main
from fusion_tf.core.imageio import read_image

ROOT = Path(__file__).resolve().parents[1]


def _fuse_default(model: str, a: str, b: str, out: Path, weights: str | None = None) -> np.ndarray:
    """The CLI as a user calls it; ``weights`` only for the comparison values, never for our model."""
    args = ["fuse", "--model", model, a, b, "-o", str(out)] + (["--weights", weights] if weights else [])
    assert main(args) == 0, args
    return read_image(out)


def _score(metric: str, pairs, fused) -> list[float]:
    return [M.compute([metric], read_image(a), read_image(b), f)[metric] for (a, b), f in zip(pairs, fused)]


def _crop_sources(tmp_path: Path, name: str, a: Path, b: Path, y: int, x: int, size: int) -> tuple[str, str]:
    """Crop the SOURCES (lossless PNG) — the crop is then fused through the CLI like any pair."""
    from PIL import Image

    out = []
    for tag, p in (("A", a), ("B", b)):
        q = tmp_path / f"{name}-{tag}.png"
        Image.fromarray(read_image(p)[y : y + size, x : x + size]).save(q)
        out.append(str(q))
    return out[0], out[1]


def test_gacn_default_path(shared, tmp_path):
    """GACN: mean ``qg_toolbox`` ≥ 0.68 on 4 of GACN's 26 test pairs (full size: two Lytro-class
    colour pairs, a TID pair and a grey pair).

    Measured mean 0.6958 (0.7221, 0.7190, 0.6695, 0.6726) with the shipped checkpoint
    (``--weights checkpoints/gacn/gacn.weights.h5``; the committed report's per-image values); a
    randomly initialised GACN: 0.47–0.52 (0.4705 seeded build, 0.5180 the unseeded default path
    before the fix).  Floor 0.68: 0.016 below the measured value, 0.16 above random.  The paper's
    Table 1 prints 0.7169 on all 26 pairs; the report's criterion is ≥ 0.70 on all 26.
    """
    folder = shared / "data" / "gacn_test26"
    names = ("color_lytro_01", "color_mwg_temple", "color_tid_t5", "gray_mwg_clock")
    pairs = [(str(folder / f"{n}_1.png"), str(folder / f"{n}_2.png")) for n in names]
    fused = [_fuse_default("gacn", a, b, tmp_path / f"{n}.png") for n, (a, b) in zip(names, pairs)]
    values = _score("qg_toolbox", pairs, fused)
    assert np.mean(values) >= 0.68, dict(zip(names, np.round(values, 4)))


def test_mffgan_default_path_close_to_the_released_model(shared, tmp_path):
    """MFF-GAN: mean ``qabf`` on 3 odd (test) Lytro pairs at least 95 % of the released TF1
    ``Lytro_model``'s, fused the same way (``--weights .../CGAN.model-19``) in the same run.

    Measured: ours 0.6770 (0.6909, 0.6542, 0.6859), released 0.6571 (0.6568, 0.6523, 0.6621):
    +3.0 %.  Random MFF-GAN: 0.051 (its 1e-3 initialisation gives an almost flat image).  The bound
    is one-sided (a floor: ours may beat the original); the report's symmetric "within 3 %" on all
    10 test pairs stays the report's acceptance criterion.  The released values are also pinned
    (±0.002) to the committed report, so a broken TF1 loader cannot lower the bar unnoticed.
    """
    folder = shared / "data" / "lytro" / "pairs"
    original = str(shared / "reference" / "mff_gan" / "checkpoint" / "Lytro_model" / "CGAN.model-19")
    names = ("lytro-01", "lytro-03", "lytro-05")
    pairs = [(str(folder / f"{n}-A.jpg"), str(folder / f"{n}-B.jpg")) for n in names]
    ours = _score("qabf", pairs, [_fuse_default("mffgan", a, b, tmp_path / f"{n}.png")
                                  for n, (a, b) in zip(names, pairs)])
    released = _score("qabf", pairs, [_fuse_default("mffgan", a, b, tmp_path / f"{n}-orig.png", original)
                                      for n, (a, b) in zip(names, pairs)])
    assert abs(np.mean(released) - 0.6571) <= 0.002, released
    assert np.mean(ours) >= 0.95 * np.mean(released), (ours, released)
    assert np.mean(ours) >= 0.66, ours  # regression floor: measured 0.6770, random 0.051


def test_gipcgan_default_path(shared, tmp_path):
    """GIPC-GAN (paper variant): mean ``qabf`` on 2 odd Lytro pairs (full size).

    Measured 0.6844 (0.6644, 0.7045; the committed report's values); random GIPC-GAN 0.033.  Floor
    0.67 (measured − 0.014).  No published numbers exist for GIPC-GAN: this is a regression floor.
    """
    folder = shared / "data" / "lytro" / "pairs"
    names = ("lytro-07", "lytro-09")
    pairs = [(str(folder / f"{n}-A.jpg"), str(folder / f"{n}-B.jpg")) for n in names]
    values = _score("qabf", pairs, [_fuse_default("gipcgan", a, b, tmp_path / f"{n}.png")
                                    for n, (a, b) in zip(names, pairs)])
    assert np.mean(values) >= 0.67, values


def test_mfifgan_default_path(shared, tmp_path):
    """MFIF-GAN: ``qg_toolbox`` (its paper's Q^AB/F) and ``qabf`` on a 256² crop of Lytro pair 11
    (rows/cols 132–387, across the focus boundary).

    Measured qg_toolbox 0.7134, qabf 0.7658; random MFIF-GAN 0.4630 / 0.4535 (a random map still
    copies source pixels, hence the high random score).  Floors 0.70 / 0.75 (measured − 0.013 /
    − 0.016), 0.24 / 0.30 above random.  A regression floor: the shipped checkpoint is a 59-iteration
    pipeline demonstration (checkpoints/mfifgan/README.md).
    """
    folder = shared / "data" / "lytro" / "pairs"
    a, b = _crop_sources(tmp_path, "lytro-11", folder / "lytro-11-A.jpg", folder / "lytro-11-B.jpg", 132, 132, 256)
    fused = _fuse_default("mfifgan", a, b, tmp_path / "fused.png")
    values = M.compute(["qg_toolbox", "qabf"], read_image(a), read_image(b), fused)
    assert values["qg_toolbox"] >= 0.70 and values["qabf"] >= 0.75, values
