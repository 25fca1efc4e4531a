"""Registration of hand-held focus stacks: align every frame to one reference frame before fusing.

Estimation (:func:`register_stack`) uses OpenCV's ECC (``cv2.findTransformECC``) coarse to fine on
grey images: each frame is aligned to its *neighbour* (neighbouring frames differ least in focus)
and the neighbour-to-neighbour warps are composed (3×3 matrices) into one transform per frame that
maps the frame's pixel coordinates to the reference frame's.  Only two frames are held at full
resolution while estimating; a small grey copy of every frame is kept for the photometric fit.

The result, :class:`Registration`, warps frames (:meth:`Registration.warp`,
:func:`apply_registration` for streams), knows the common area every warped frame covers (the crop
rectangle) and can be saved / loaded as JSON so one alignment can be reused for other stacks shot
on the same rig.

Frame numbers in error messages are 1-based ("frame 3 and frame 4 of 7"); ``reference`` and
``index`` arguments are 0-based.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from fusion_tf.errors import FusionError

__all__ = ["MOTIONS", "Registration", "RegistrationError", "apply_registration", "register_stack"]

MOTIONS = ("none", "translation", "euclidean", "affine", "homography")
_ECC_MOTION = {"translation": cv2.MOTION_TRANSLATION, "euclidean": cv2.MOTION_EUCLIDEAN,
               "affine": cv2.MOTION_AFFINE, "homography": cv2.MOTION_HOMOGRAPHY}
_FORMAT = "fusion_tf.registration"
_VERSION = 1
_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
# how far (px) inside a frame's outermost pixel centres a sample must lie so the interpolation
# kernel touches only real pixels (bilinear: 2×2 neighbourhood, bicubic: 4×4)
_MARGIN = {"linear": 0.0, "cubic": 1.0}
_COARSE_SIZE = 512      # the coarsest pyramid level has long side <= this
_PHOTO_SIZE = 256       # long side of the grey copies kept for the photometric fit


class RegistrationError(FusionError):
    """Frames could not be registered (ECC did not converge, implausible motion, no overlap)."""


# --------------------------------------------------------------------------------------------------
# small geometry helpers

def _grey(frame: np.ndarray) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim == 3:
        if a.shape[2] == 1:
            a = a[:, :, 0]
        elif a.shape[2] in (3, 4):
            a = cv2.cvtColor(a[:, :, :3], cv2.COLOR_RGB2GRAY)
    return a.astype(np.float32)


def _to3(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    if m.shape == (3, 3):
        return m.copy()
    out = np.eye(3)
    out[:2] = m
    return out


def _scale_warp(w: np.ndarray, f: float) -> np.ndarray:
    """Warp matrix of one pyramid level -> the level ``f`` times finer: S·W·S⁻¹, S = diag(f, f, 1).

    (``cv2.pyrDown`` keeps pixel ``2i`` of the finer level as pixel ``i``, so coordinates scale by
    exactly 2 with no half-pixel offset.)  Translation ×f; for a homography also the projective row /f.
    """
    w = w.copy()
    w[0, 2] *= f
    w[1, 2] *= f
    if w.shape == (3, 3):
        w[2, 0] /= f
        w[2, 1] /= f
    return w


def _project(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ np.asarray(m, np.float64).T
    return p[:, :2] / p[:, 2:3]


def _frame_label(i: int, n: int, names: Sequence[str] | None) -> str:
    if names is not None:
        return f"frame {i + 1} ({names[i]})"
    return f"frame {i + 1}"


# --------------------------------------------------------------------------------------------------
# the common area

def _valid_quad(m: np.ndarray, size: tuple[int, int], margin: float) -> np.ndarray | None:
    """The pixel-centre area of a frame that interpolates only real pixels, mapped by ``m`` into the
    reference frame: a convex quad (counter-clockwise in y-down coordinates or clockwise — sign is
    normalised by the caller), or None if the frame passes through the horizon (homography)."""
    w, h = size
    lo, hx, hy = margin, w - 1 - margin, h - 1 - margin
    corners = np.array([[lo, lo], [hx, lo], [hx, hy], [lo, hy]], np.float64)
    p = np.c_[corners, np.ones(4)] @ np.asarray(m, np.float64).T
    if np.any(p[:, 2] <= 1e-12):
        return None
    return p[:, :2] / p[:, 2:3]


def _column_extent(quads: list[np.ndarray], width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """For each integer column x of the reference frame, the y interval [lo, hi] inside every quad
    (and inside the frame).  Each quad is convex, so the intersection is convex: ``lo`` is a convex
    and ``hi`` a concave function of x."""
    xs = np.arange(width, dtype=np.float64)
    lo = np.zeros(width)
    hi = np.full(width, height - 1.0)
    eps = 1e-7
    for q in quads:
        # orient so the interior is on the left of each edge (positive signed area)
        area = 0.5 * np.sum(q[:, 0] * np.roll(q[:, 1], -1) - np.roll(q[:, 0], -1) * q[:, 1])
        if area < 0:
            q = q[::-1]
        for k in range(4):
            (x0, y0), (x1, y1) = q[k], q[(k + 1) % 4]
            # interior: cross(edge, p - p0) >= 0  <=>  a*x + b*y + c >= 0
            a, b = -(y1 - y0), (x1 - x0)
            c = -(a * x0 + b * y0)
            if abs(b) < 1e-12:
                bad = a * xs + c < -eps
                lo[bad], hi[bad] = np.inf, -np.inf
            elif b > 0:      # y >= -(a x + c) / b
                lo = np.maximum(lo, -(a * xs + c) / b - eps)
            else:            # y <= -(a x + c) / b
                hi = np.minimum(hi, -(a * xs + c) / b + eps)
    return lo, hi


def _largest_rect(lo: np.ndarray, hi: np.ndarray) -> tuple[int, int, int, int] | None:
    """Largest axis-aligned integer rectangle (x, y, w, h) with every pixel centre inside the convex
    region given by per-column extents.  For a convex region a rectangle is inside iff its four
    corners are, so the height available to columns x0..x1 depends only on the end columns; all
    (x0, x1) pairs are scored, vectorised in blocks."""
    ylo = np.ceil(lo)
    yhi = np.floor(hi)
    ok = ylo <= yhi
    cols = np.flatnonzero(ok)
    if cols.size == 0:
        return None
    # the convex region spans a contiguous run of columns
    c0, c1 = cols[0], cols[-1]
    ylo, yhi = ylo[c0:c1 + 1], yhi[c0:c1 + 1]
    n = ylo.size
    best = (-1.0, 0, 0, 0, 0)
    block = max(1, 4_000_000 // n)
    for s in range(0, n, block):
        x0 = np.arange(s, min(n, s + block))[:, None]
        x1 = np.arange(n)[None, :]
        top = np.maximum(ylo[x0], ylo[x1])
        bot = np.minimum(yhi[x0], yhi[x1])
        area = (x1 - x0 + 1) * (bot - top + 1)
        area = np.where((x1 >= x0) & (bot >= top), area, -1)
        k = int(np.argmax(area))
        i, j = divmod(k, n)
        if area[i, j] > best[0]:
            a0, a1 = s + i, j
            best = (float(area[i, j]), a0, a1, int(max(ylo[a0], ylo[a1])), int(min(yhi[a0], yhi[a1])))
    if best[0] <= 0:
        return None
    _, a0, a1, top, bot = best
    return int(c0 + a0), top, int(a1 - a0 + 1), bot - top + 1


def _common_area(transforms: list[np.ndarray], size: tuple[int, int], interpolation: str,
                 names: Sequence[str] | None = None) -> tuple[int, int, int, int]:
    w, h = size
    quads = []
    for i, m in enumerate(transforms):
        identity = np.allclose(m, np.eye(3), atol=1e-12)
        # the identity warp samples exact pixel centres: no interpolation kernel, no margin needed
        q = _valid_quad(m, size, 0.0 if identity else _MARGIN[interpolation])
        if q is None:
            raise RegistrationError(f"registration failed: {_frame_label(i, len(transforms), names)} "
                                    "maps through the horizon (implausible homography): try --align affine")
        quads.append(q)
    rect = _largest_rect(*_column_extent(quads, w, h))
    if rect is None:
        raise RegistrationError("registration failed: the registered frames have no area in common; "
                                "check the frames belong to one stack")
    return rect


# --------------------------------------------------------------------------------------------------
# the result

@dataclass
class Registration:
    """Transforms of one stack to its reference frame.

    ``transforms[i]`` (3×3 float64) maps frame ``i``'s pixel coordinates (pixel centres at integer
    positions) to the reference frame's.  ``area`` is the rectangle ``(x, y, w, h)`` inside the
    reference frame that every warped frame covers with real pixels; :meth:`warp` crops to it when
    ``crop`` is true.  ``photometric`` is None or one ``(gain, offset)`` per frame, applied as
    ``gain * frame + offset`` to every channel.
    """

    motion: str
    reference: int
    frame_size: tuple[int, int]                      # (width, height)
    transforms: list[np.ndarray]
    area: tuple[int, int, int, int]
    crop: bool = True
    photometric: list[tuple[float, float]] | None = None
    interpolation: str = "cubic"
    correlations: list[float | None] = field(default_factory=list)   # ECC score of each neighbour pair

    @property
    def count(self) -> int:
        return len(self.transforms)

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of what :meth:`warp` returns."""
        return (self.area[2], self.area[3]) if self.crop else self.frame_size

    def _check(self, frame: np.ndarray, index: int) -> None:
        if not 0 <= index < self.count:
            raise FusionError(f"registration has {self.count} frames; there is no frame {index + 1}")
        h, w = frame.shape[:2]
        if (w, h) != tuple(self.frame_size):
            raise FusionError(f"frame {index + 1} is {w}x{h} but the registration is for "
                              f"{self.frame_size[0]}x{self.frame_size[1]} frames")

    def warp(self, frame: np.ndarray, index: int) -> np.ndarray:
        """Frame ``index`` (uint8 or uint16, H×W or H×W×C) in the reference frame's coordinates; cropped to
        the common area when ``crop`` (else full size, borders replicated)."""
        frame = np.asarray(frame)
        self._check(frame, index)
        m = self.transforms[index]
        if np.allclose(m, np.eye(3), atol=1e-12):
            out = frame
        else:
            w, h = self.frame_size
            flags = _INTERP[self.interpolation]
            if self.motion == "homography":
                out = cv2.warpPerspective(frame, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            else:
                out = cv2.warpAffine(frame, m[:2], (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            if out.ndim == 2 and frame.ndim == 3:      # cv2 drops a single channel axis
                out = out[:, :, None]
        if self.photometric is not None:
            gain, offset = self.photometric[index]
            if gain != 1.0 or offset != 0.0:
                top = np.iinfo(out.dtype).max  # the offset was fitted on the 8-bit scale
                offset = offset * (top / 255.0)
                out = np.clip(out.astype(np.float32) * gain + offset + 0.5, 0, top).astype(out.dtype)
        if self.crop:
            x, y, cw, ch = self.area
            out = out[y:y + ch, x:x + cw]
        return out

    # ---- persistence

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the registration as JSON (temporary file + ``os.replace``: never a half-written file)."""
        doc = {
            "format": _FORMAT, "version": _VERSION, "motion": self.motion, "reference": self.reference,
            "frame_size": list(self.frame_size), "count": self.count,
            "transforms": [np.asarray(m, np.float64).tolist() for m in self.transforms],
            "area": list(self.area), "crop": bool(self.crop), "interpolation": self.interpolation,
            "photometric": None if self.photometric is None else [list(map(float, p)) for p in self.photometric],
        }
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1)   # floats are written with repr: the round trip is exact
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @classmethod
    def from_json(cls, path: str | os.PathLike, frame_size: tuple[int, int] | None = None,
                  count: int | None = None) -> "Registration":
        """Load :meth:`to_json`'s file; ``frame_size`` (width, height) and ``count``, when given, must
        match the stack it is applied to.  Any problem is a one-line :class:`FusionError`."""
        where = f"registration file {os.fspath(path)}"
        try:
            with open(path) as f:
                doc = json.load(f)
        except OSError as e:
            raise FusionError(f"cannot read {where}: {e.strerror or e}") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise FusionError(f"{where} is not valid JSON ({str(e).splitlines()[0]})") from None
        try:
            if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
                raise ValueError("not a fusion_tf registration")
            if doc.get("version") != _VERSION:
                raise ValueError(f"unsupported version {doc.get('version')!r}")
            motion = doc["motion"]
            if motion not in MOTIONS:
                raise ValueError(f"unknown motion {motion!r}")
            fw, fh = (int(v) for v in doc["frame_size"])
            n = int(doc["count"])
            mats = [np.array(m, np.float64) for m in doc["transforms"]]
            if len(mats) != n or n < 1 or any(m.shape != (3, 3) or not np.all(np.isfinite(m)) for m in mats):
                raise ValueError("transforms must be one finite 3x3 matrix per frame")
            ref = int(doc["reference"])
            if not 0 <= ref < n:
                raise ValueError("reference out of range")
            x, y, w, h = (int(v) for v in doc["area"])
            if not (0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= fw and y + h <= fh):
                raise ValueError("area is not inside the frame")
            interp = doc.get("interpolation", "cubic")
            if interp not in _INTERP:
                raise ValueError(f"unknown interpolation {interp!r}")
            photo = doc.get("photometric")
            if photo is not None:
                photo = [(float(g), float(o)) for g, o in photo]
                if len(photo) != n:
                    raise ValueError("photometric needs one (gain, offset) per frame")
            crop = doc.get("crop", True)
            if not isinstance(crop, bool):
                raise ValueError("crop must be true or false")
        except (KeyError, TypeError, ValueError) as e:
            what = f"missing {e.args[0]!r}" if isinstance(e, KeyError) else str(e).splitlines()[0]
            raise FusionError(f"{where} is malformed: {what}") from None
        if frame_size is not None and tuple(frame_size) != (fw, fh):
            raise FusionError(f"{where} is for {fw}x{fh} frames, not {frame_size[0]}x{frame_size[1]}")
        if count is not None and count != n:
            raise FusionError(f"{where} is for a stack of {n} frames, not {count}")
        return cls(motion=motion, reference=ref, frame_size=(fw, fh), transforms=mats, area=(x, y, w, h),
                   crop=crop, photometric=photo, interpolation=interp)


# --------------------------------------------------------------------------------------------------
# estimation

def _pyramid(grey: np.ndarray, finest: int, coarse_size: int) -> list[np.ndarray]:
    """Levels coarse -> fine; ``finest`` pyrDown steps below full resolution is the finest kept, the
    coarsest has long side <= ``coarse_size``."""
    levels = [grey]
    while (max(levels[-1].shape) > coarse_size or len(levels) <= finest) and min(levels[-1].shape) >= 32:
        levels.append(cv2.pyrDown(levels[-1]))
    if finest >= len(levels):
        raise FusionError(f"max_size is too small for {grey.shape[1]}x{grey.shape[0]} frames")
    return levels[finest:][::-1]


def _levels_below(shape: tuple[int, int], max_size: int | None) -> int:
    """How many pyrDown steps bring the long side to <= max_size (0: estimate at full resolution)."""
    if max_size is None:
        return 0
    k, long = 0, max(shape)
    while long > max_size:
        long = (long + 1) // 2
        k += 1
    return k


def _ecc_pair(tpl: list[np.ndarray], inp: list[np.ndarray], motion: str, min_correlation: float,
              pair: str) -> tuple[np.ndarray, float]:
    """Warp W (3×3, level-0 coordinates of the pyramids) with inp(W x) ≈ tpl(x), coarse to fine."""
    mtype = _ECC_MOTION[motion]
    homog = motion == "homography"
    # translation start from phase correlation at the coarsest level (robust to large shifts)
    a, b = tpl[0], inp[0]
    win = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a, b, win)
    w = np.eye(3, dtype=np.float32) if homog else np.eye(2, 3, dtype=np.float32)
    if response > 0.05 and abs(dx) < a.shape[1] / 3 and abs(dy) < a.shape[0] / 3:
        w[0, 2], w[1, 2] = dx, dy
    rho = float("nan")
    nlev = len(tpl)
    for lev in range(nlev):
        if lev:
            w = _scale_warp(w, 2.0)
        last = lev == nlev - 1
        crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100 if lev == 0 else 40,
                1e-6 if lev == 0 else 1e-5)
        try:
            rho, w = cv2.findTransformECC(tpl[lev], inp[lev], w, mtype, crit, None, 5)
        except cv2.error:
            raise RegistrationError(f"registration failed between {pair} (ECC did not converge): "
                                    "try --align translation or check the frames belong to one stack") from None
        if not np.all(np.isfinite(w)):
            rho = float("nan")
        if not rho > min_correlation / 2 or (last and not rho >= min_correlation):
            raise RegistrationError(f"registration failed between {pair} (ECC did not converge, "
                                    f"correlation {rho:.2f}): try --align translation or check the frames "
                                    "belong to one stack")
    w3 = _to3(w)
    # plausibility: neighbouring frames of one stack differ by a small motion
    h0, w0 = tpl[-1].shape
    corners = np.array([[0, 0], [w0 - 1, 0], [w0 - 1, h0 - 1], [0, h0 - 1]], np.float64)
    moved = _project(w3, corners) if np.all((np.c_[corners, np.ones(4)] @ w3[2]) > 0) else None
    if moved is None or np.max(np.hypot(*(moved - corners).T)) > 0.25 * math.hypot(w0, h0):
        raise RegistrationError(f"registration failed between {pair} (ECC converged to an implausible "
                                "motion): try --align translation or check the frames belong to one stack")
    return w3, float(rho)


def _photometric_fit(small: list[np.ndarray], transforms: list[np.ndarray], ref: int,
                     scale: float, area: tuple[int, int, int, int]) -> list[tuple[float, float]]:
    """(gain, offset) per frame so gain*frame + offset matches the reference in the least-squares
    sense over the common area, on heavily smoothed small grey copies (the smoothing removes the
    frames' focus differences, which would otherwise bias the gain)."""
    s = np.diag([scale, scale, 1.0])
    si = np.linalg.inv(s)
    hs, ws = small[ref].shape
    x, y, w, h = area
    x0, y0 = int(math.ceil(x * scale)), int(math.ceil(y * scale))
    x1, y1 = int((x + w - 1) * scale), int((y + h - 1) * scale)
    sigma = max(2.0, max(ws, hs) / 32)
    refb = cv2.GaussianBlur(small[ref], (0, 0), sigma)[y0:y1 + 1, x0:x1 + 1].ravel().astype(np.float64)
    out = []
    for i, g in enumerate(small):
        if i == ref:
            out.append((1.0, 0.0))
            continue
        # small coords: p_s = S p (approximately; the copies are resized, centres differ by < 1 small px)
        m = s @ transforms[i] @ si
        wi = cv2.warpPerspective(g, m, (ws, hs), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        v = cv2.GaussianBlur(wi, (0, 0), sigma)[y0:y1 + 1, x0:x1 + 1].ravel().astype(np.float64)
        out.append(_gain_offset(v, refb))
    return out


def _gain_offset(v: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Orthogonal (total) least squares line ref ≈ gain*v + offset: symmetric in the two frames, so
    residual differences (focus, noise) do not shrink the gain as ordinary least squares would."""
    if v.size < 2:
        return 1.0, 0.0
    mv, mr = float(v.mean()), float(ref.mean())
    sxx, syy = float(np.mean((v - mv) ** 2)), float(np.mean((ref - mr) ** 2))
    sxy = float(np.mean((v - mv) * (ref - mr)))
    if sxx < 1e-6 or syy < 1e-6 or sxy <= 0:      # flat overlap: only the offset can be fitted
        return 1.0, mr - mv
    gain = (syy - sxx + math.sqrt((syy - sxx) ** 2 + 4 * sxy * sxy)) / (2 * sxy)
    return gain, mr - gain * mv


def register_stack(frames: Iterable[np.ndarray], motion: str = "affine", reference: str | int = "middle",
                   photometric: bool = False, crop: bool = True, progress: Callable[[int, int], None] | None = None,
                   *, count: int | None = None, names: Sequence[str] | None = None, max_size: int | None = None,
                   interpolation: str = "cubic", min_correlation: float = 0.5,
                   coarse_size: int = _COARSE_SIZE) -> Registration:
    """Estimate the transforms that align every frame of a stack to ``reference``.

    ``frames``: uint8 H×W or H×W×3 arrays of one size (a sequence, or any iterable — then ``count``
    says how many for the progress callback).  ``motion``: one of :data:`MOTIONS`.  ``reference``:
    ``"first"``, ``"middle"`` (index ``n // 2``) or a 0-based index.  ``photometric``: also fit a
    gain/offset per frame to the reference.  ``crop``: :meth:`Registration.warp` crops to the common
    area.  ``progress(done, total)`` is called after each frame is read and registered to its
    neighbour.  ``names`` label frames in error messages.  ``max_size``: estimate at a pyramid level
    whose long side is at most this (None: refine up to full resolution); ``coarse_size``: long side
    of the coarsest level, where ECC starts.  ``min_correlation``: the
    ECC score (correlation of the aligned neighbours) below which a pair counts as not registered.

    Raises :class:`RegistrationError` (a :class:`FusionError`) naming the frame pair when ECC does not
    converge.
    """
    if motion not in MOTIONS:
        raise FusionError(f"unknown motion {motion!r}: choose one of {', '.join(MOTIONS)}")
    if interpolation not in _INTERP:
        raise FusionError(f"unknown interpolation {interpolation!r}: choose linear or cubic")
    if count is None and hasattr(frames, "__len__"):
        count = len(frames)  # type: ignore[arg-type]

    size: tuple[int, int] | None = None
    steps: list[np.ndarray] = []       # steps[i-1]: frame i coords -> frame i-1 coords
    rhos: list[float | None] = []
    small: list[np.ndarray] = []       # photometric copies
    small_scale = 1.0
    prev: list[np.ndarray] | None = None
    finest = 0
    n = 0
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.dtype not in (np.uint8, np.uint16) or frame.ndim not in (2, 3) or \
                frame.ndim == 3 and frame.shape[2] not in (1, 3, 4):
            raise FusionError(f"{_frame_label(i, count or 0, names)} must be a uint8 or uint16 H×W or H×W×3 image, "
                              f"got {frame.dtype} {frame.shape}")
        if frame.dtype == np.uint16:  # estimated on the 8-bit scale, so thresholds mean the same; warped at 16 bits
            frame = frame.astype(np.float32) / np.float32(257.0)
        h, w = frame.shape[:2]
        if size is None:
            size = (w, h)
            finest = _levels_below((h, w), max_size)
            small_scale = min(1.0, _PHOTO_SIZE / max(w, h))
        elif (w, h) != size:
            raise FusionError(f"{_frame_label(i, count or 0, names)} is {w}x{h}, frame 1 is {size[0]}x{size[1]}: "
                              "all frames of a stack must have one size")
        n = i + 1
        if motion != "none" or photometric:
            g = _grey(frame)
            if photometric:
                small.append(cv2.resize(g, (max(1, round(w * small_scale)), max(1, round(h * small_scale))),
                                        interpolation=cv2.INTER_AREA))
            if motion != "none":
                if g.std() < 1e-3:
                    raise RegistrationError(f"registration failed at {_frame_label(i, count or n, names)}: "
                                            "the frame is uniform (nothing to align)")
                pyr = _pyramid(g, finest, coarse_size)
                if prev is not None:
                    pair = f"{_frame_label(i - 1, count or n, names)} and {_frame_label(i, count or n, names)}"
                    wmat, rho = _ecc_pair(prev, pyr, motion, min_correlation, pair)
                    # W maps frame i-1 (template) coords to frame i coords at the finest level used;
                    # bring it to full resolution and invert: frame i -> frame i-1
                    wmat = _scale_warp(wmat, float(2 ** finest))
                    steps.append(np.linalg.inv(wmat))
                    rhos.append(rho)
                prev = pyr
        if progress is not None:
            progress(n, count if count is not None else n)
    if n == 0:
        raise FusionError("no frames to register")
    if count is not None and n != count:
        raise FusionError(f"expected {count} frames, got {n}")

    if reference == "first":
        ref = 0
    elif reference == "middle":
        ref = n // 2
    elif isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        ref = int(reference)
        if not 0 <= ref < n:
            raise FusionError(f"reference frame {ref} is out of range for a stack of {n} frames (0-based)")
    else:
        raise FusionError(f"reference must be 'first', 'middle' or a frame index, not {reference!r}")

    transforms = [np.eye(3) for _ in range(n)]
    if motion != "none":
        for i in range(ref + 1, n):            # i -> i-1 -> ... -> ref
            transforms[i] = transforms[i - 1] @ steps[i - 1]
        for i in range(ref - 1, -1, -1):       # i -> i+1 -> ... -> ref
            transforms[i] = transforms[i + 1] @ np.linalg.inv(steps[i])
        for m in transforms:
            m /= m[2, 2]
            if motion != "homography":
                m[2] = (0.0, 0.0, 1.0)
    assert size is not None
    area = _common_area(transforms, size, interpolation, names) if motion != "none" else (0, 0, *size)
    photo = _photometric_fit(small, transforms, ref, small_scale, area) if photometric else None
    return Registration(motion=motion, reference=ref, frame_size=size, transforms=transforms, area=area,
                        crop=crop, photometric=photo, interpolation=interpolation,
                        correlations=[None] + rhos if motion != "none" else [])


def apply_registration(frames: Iterable[np.ndarray], registration: Registration) -> Iterator[np.ndarray]:
    """Warp a stream of frames one at a time (frame ``i`` of the stream with transform ``i``).

    Raises :class:`FusionError` when the stream has more or fewer frames than the registration."""
    n = 0
    for i, frame in enumerate(frames):
        if i >= registration.count:
            raise FusionError(f"the stack has more frames than the registration ({registration.count})")
        yield registration.warp(frame, i)
        n = i + 1
    if n != registration.count:
        raise FusionError(f"the stack has {n} frames but the registration is for {registration.count}")
