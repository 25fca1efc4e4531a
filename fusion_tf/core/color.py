"""Colour conversions used by the originals and by the metric toolboxes (NumPy, float64).

The four originals and the MATLAB metric code use *different* grey/luma rules, and the differences
are measurable in the outputs, so each rule is a separate, named function:

* ``rgb_to_y_studio``          BT.601 studio-swing luma (16–235), MFF-GAN / GIPC-GAN's MATLAB RGB2YCbCr;
* ``rgb_to_y_studio_matlab``   the same computed the way MATLAB does it on uint8 (each product rounded,
                               uint8 saturation) — what produced MFF-GAN's released test inputs;
* ``rgb_to_grey_skimage``      skimage ``rgb2gray`` (0.2125/0.7154/0.0721) — GACN inference;
* ``rgb_to_grey_opencv``       OpenCV ``IMREAD_GRAYSCALE`` rule (0.299/0.587/0.114, rounded) — GACN training;
* ``rgb_to_grey_matlab``       MATLAB ``rgb2gray`` on uint8 — every metric reference.

This module is NumPy only so the metrics can use it without importing TensorFlow.
"""

from __future__ import annotations

import numpy as np

#: MATLAB rgb2gray coefficients (from its inverse-YIQ derivation), applied to uint8 then rounded.
MATLAB_GREY_COEFFS = (0.298936021293775, 0.587043074451121, 0.114020904255103)
SKIMAGE_GREY_COEFFS = (0.2125, 0.7154, 0.0721)

#: BT.601 studio swing as MFF-GAN's MATLAB code writes it: (R, G, B weights, offset) per plane
STUDIO_Y = (0.257, 0.504, 0.098, 16.0)
STUDIO_CB = (-0.148, -0.291, 0.439, 128.0)
STUDIO_CR = (0.439, -0.368, -0.071, 128.0)
#: inverse: R, G, B = Σ weight·(Y−16, Cb−128, Cr−128)
STUDIO_INVERSE = ((1.164, 0.0, 1.596), (1.164, -0.392, -0.813), (1.164, 2.017, 0.0))


def round_half_away(x: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: halves away from zero (NumPy's ``round`` goes to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half away from zero and saturate to 0..255 (MATLAB ``uint8(x)``)."""
    return np.clip(round_half_away(x), 0, 255).astype(np.uint8)


#: 16-bit sources are brought to the 0..255 scale every rule here (and every network) works on by
#: dividing by 65535 / 255 = 257, so a 16-bit v and an 8-bit v / 257 meet the same code at float precision
SCALE_16 = 257.0


def to_255(image: np.ndarray) -> np.ndarray:
    """A uint16 image as float64 on the 0..255 scale (x / 257); uint8 images are returned unchanged."""
    image = np.asarray(image)
    return image / SCALE_16 if image.dtype == np.uint16 else image


def from_255(x: np.ndarray, dtype) -> np.ndarray:
    """0..255 floats → ``dtype``: :func:`to_uint8` for uint8, ``round(x·257)`` saturated for uint16 —
    the single rounding of a 16-bit result."""
    if np.dtype(dtype) == np.uint16:
        return np.clip(round_half_away(np.asarray(x, np.float64) * SCALE_16), 0, 65535).astype(np.uint16)
    return to_uint8(x)


def _planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an H×W×3 RGB array, got shape {rgb.shape}")
    rgb = rgb.astype(np.float64)
    return rgb[..., 0], rgb[..., 1], rgb[..., 2]


# ----------------------------------------------------------------------------------------------
# BT.601 studio swing (MFF-GAN, GIPC-GAN)
# ----------------------------------------------------------------------------------------------
def rgb_to_y_studio(rgb: np.ndarray) -> np.ndarray:
    """Studio-swing luma ``Y = 0.257R + 0.504G + 0.098B + 16`` on 0..255 floats (no rounding)."""
    r, g, b = _planes(rgb)
    wr, wg, wb, offset = STUDIO_Y
    return wr * r + wg * g + wb * b + offset


def rgb_to_y_studio_matlab(rgb: np.ndarray) -> np.ndarray:
    """Studio luma as MATLAB evaluates it on a uint8 image: every product rounded, uint8 saturation."""
    r, g, b = _planes(rgb)
    wr, wg, wb, offset = STUDIO_Y
    y = to_uint8(wr * r).astype(np.float64)
    y = np.minimum(y + to_uint8(wg * g), 255)
    y = np.minimum(y + to_uint8(wb * b), 255)
    return np.minimum(y + offset, 255).astype(np.uint8)


def rgb_to_cbcr_studio(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Studio-swing chroma (Cb, Cr), centred on 128, on 0..255 floats."""
    r, g, b = _planes(rgb)
    return tuple(wr * r + wg * g + wb * b + offset for wr, wg, wb, offset in (STUDIO_CB, STUDIO_CR))


def ycbcr_studio_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Inverse of the studio-swing transform (float, unclipped): the coefficients of MFF-GAN's main.m."""
    planes = (np.asarray(y, np.float64) - 16.0, np.asarray(cb, np.float64) - 128.0, np.asarray(cr, np.float64) - 128.0)
    return np.stack([sum(w * p for w, p in zip(row, planes)) for row in STUDIO_INVERSE], axis=-1)


def fuse_chroma(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """The Cb/Cr rule of MFF-GAN: average weighted by distance from neutral grey (128).

    ``(c1·|c1−128| + c2·|c2−128|) / (|c1−128| + |c2−128|)``, and exactly 128 where both sources are
    neutral (the original's 0/0 guard).  The more saturated source dominates, so colour is not washed
    out by the blurred (usually less saturated) source.
    """
    c1 = np.asarray(c1, np.float64)
    c2 = np.asarray(c2, np.float64)
    w1, w2 = np.abs(c1 - 128.0), np.abs(c2 - 128.0)
    den = w1 + w2
    safe = np.where(den == 0, 1.0, den)
    return np.where(den == 0, 128.0, (c1 * w1 + c2 * w2) / safe)


# ----------------------------------------------------------------------------------------------
# Grey rules
# ----------------------------------------------------------------------------------------------
def rgb_to_grey_skimage(rgb01: np.ndarray) -> np.ndarray:
    """skimage ``rgb2gray`` on [0,1] floats, no rounding (GACN inference)."""
    r, g, b = _planes(rgb01)
    cr, cg, cb = SKIMAGE_GREY_COEFFS
    return cr * r + cg * g + cb * b


def rgb_to_grey_opencv(rgb: np.ndarray) -> np.ndarray:
    """OpenCV ``cvtColor(RGB2GRAY)`` / ``imread(..., 0)`` rule: fixed-point 0.299/0.587/0.114, uint8."""
    import cv2  # local: only GACN training data needs it

    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def rgb_to_grey_matlab(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` on uint8 input, returned as float64 0..255 (the metric references' rule)."""
    r, g, b = _planes(rgb)
    cr, cg, cb = MATLAB_GREY_COEFFS
    return round_half_away(cr * r + cg * g + cb * b).clip(0, 255)
