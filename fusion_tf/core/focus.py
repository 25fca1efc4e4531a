"""Depth (index) maps: per pixel, the 0-based index of the frame the fused result takes.

What "takes" means depends on the model (``FusionResult.depth``):

* **selection models** — GACN calibration: the argmax of its decision volume (kept by
  :class:`~fusion_tf.inference.gacn.CalibrationArgmax`); MFIF-GAN serial: the binary map picks the
  running result (keep its index) or the new frame (:func:`take_new` records the frame's index);
  GACN serial / pair: the soft map blends ``d·running + (1 − d)·new``, the index is that of the
  **dominant frame of the blend** (new frame where its weight ``1 − d > 0.5``).
* **end-to-end generators** (MFF-GAN, GIPC-GAN) synthesise their output, so the depth comes from
  the per-frame focus measure the model's own objective uses, argmax over frames, **ties → lowest
  index** (MFF-GAN's screening maps send ties to near, i.e. the earlier frame):

  - MFF-GAN: the screening-map measure ``RB(x) = |x − G(G(x))|`` (:func:`screening_measure`, the
    very :func:`~fusion_tf.core.ops.repeated_blur_residual` its loss uses: 3×3 σ1.5 low-pass twice,
    zero padding, per pixel, no window) of the luma plane the network sees, in [−1, 1].  For two
    frames the depth *is* the screening map ``S_far``.
  - GIPC-GAN: its loss has no screening map (it is supervised by an all-in-focus target); its
    gradient notion is the Laplacian ∇ (spec ``gipc_gan.md`` §6), so the measure is ``|∇x|``
    (:func:`laplacian_measure`: 4-neighbour kernel, zero padding, per pixel) of the same plane.

  Both are per-pixel measures, like the screening map: in textureless areas no frame is sharper and
  the index there is noise (exact ties, e.g. flat areas, go to frame 0).

The argmax streams (:class:`FocusArgmax`): one running best score and index, one frame at a time.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

#: pixels of context the measures need on each side (at most two 3×3 passes): tiles use it as halo
MEASURE_HALO = 2


def screening_graph(x):
    """MFF-GAN's screening-map focus measure ``RB(x)`` on (N, H, W, 1) tensors (what the ONNX backend converts)."""
    from fusion_tf.core import ops

    return ops.repeated_blur_residual(x)


def laplacian_graph(x):
    """``|∇x|``, the magnitude of the 4-neighbour Laplacian with zero padding, on (N, H, W, 1) tensors."""
    import tensorflow as tf

    from fusion_tf.core import ops

    return tf.abs(ops.laplacian(x))


def _on_plane(graph: Callable, plane: np.ndarray) -> np.ndarray:
    """``graph`` applied to one H×W float plane, eagerly in TF (float32 H×W)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(plane, np.float32)[None, :, :, None])
    return np.asarray(graph(x))[0, :, :, 0]


def screening_measure(plane: np.ndarray) -> np.ndarray:
    """MFF-GAN's screening-map focus measure ``RB(x)`` of one H×W float plane (float32 H×W)."""
    return _on_plane(screening_graph, plane)


def laplacian_measure(plane: np.ndarray) -> np.ndarray:
    """``|∇x|`` of one H×W float plane (float32 H×W)."""
    return _on_plane(laplacian_graph, plane)


class FocusArgmax:
    """Streaming first-maximal-index argmax of per-frame scores: :meth:`add` one H×W score per frame,
    in order; a strict ``>`` keeps the earlier index on ties.  ``index`` is int32 H×W (None before
    the first frame)."""

    def __init__(self):
        self.index: np.ndarray | None = None
        self.count = 0
        self._best = None

    def add(self, score: np.ndarray) -> None:
        score = np.asarray(score, np.float32)
        if self._best is None:
            self._best, self.index = score.copy(), np.zeros(score.shape, np.int32)
        else:
            better = score > self._best
            self._best[better] = score[better]
            self.index[better] = self.count
        self.count += 1

    def track(self, frames: Iterable[np.ndarray],
              measure: Callable[[np.ndarray], np.ndarray] | None) -> Iterator[np.ndarray]:
        """Pass ``frames`` through unchanged, adding ``measure(frame)`` for each as it goes by
        (``measure`` None: only count them, for a caller that wants no depth map)."""
        for frame in frames:
            if measure is None:
                self.count += 1
            else:
                self.add(measure(frame))
            yield frame


def take_new(index: np.ndarray | None, took_new: np.ndarray, frame: int) -> np.ndarray:
    """Serial fusion's running index: where the pair's result took the new frame (``took_new``, bool
    H×W), it now holds ``frame``; elsewhere it keeps the running result's index (0 at the start)."""
    if index is None:
        index = np.zeros(took_new.shape, np.int32)
    index[took_new] = frame
    return index


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
DEPTH_SUFFIXES = (".png",)
PREVIEW_COLORMAP = "viridis"


def depth_levels(index: np.ndarray, count: int) -> np.ndarray:
    """Frame indices 0..count−1 → uint16 ``round(i·65535 / (count − 1))`` (halves up, exact integers),
    so the first frame is 0, the last 65535 and a stack of N frames has N distinct levels."""
    index = np.asarray(index)
    if count < 2:
        raise ValueError(f"a depth map needs at least 2 frames, got {count}")
    if index.size and (index.min() < 0 or index.max() >= count):
        raise ValueError(f"depth indices {index.min()}..{index.max()} do not fit a stack of {count} frames")
    scaled = (index.astype(np.int64) * (2 * 65535) + (count - 1)) // (2 * (count - 1))
    return scaled.astype(np.uint16)


def depth_preview(index: np.ndarray, count: int, colormap: str = PREVIEW_COLORMAP) -> np.ndarray:
    """An 8-bit RGB picture of the depth map: frame i/(count − 1) through a matplotlib colour map."""
    from matplotlib import colormaps

    lut = (colormaps[colormap](np.linspace(0.0, 1.0, count))[:, :3] * 255.0 + 0.5).astype(np.uint8)
    return lut[np.asarray(index)]


def write_depth_map(path, index: np.ndarray, count: int, preview=None):
    """Write ``index`` (H×W frame indices of a ``count``-frame stack) as a 16-bit grey PNG scaled by
    :func:`depth_levels`, atomically; ``preview``: also a colourised 8-bit RGB PNG there.  Returns the
    path(s) written."""
    from pathlib import Path

    from PIL import Image

    from fusion_tf.core.imageio import atomic_path, write_image
    from fusion_tf.errors import InputImageError

    for p in (path, preview):
        if p is not None and Path(p).suffix.lower() not in DEPTH_SUFFIXES:
            raise InputImageError(f"depth map {p}: use a .png file (16-bit grey; preview 8-bit RGB)")
    levels = depth_levels(index, count)
    with atomic_path(path) as tmp:
        Image.fromarray(levels).save(tmp, format="PNG")  # uint16 → mode I;16, a 16-bit grey PNG
    if preview is None:
        return Path(path)
    return Path(path), write_image(preview, depth_preview(index, count))
