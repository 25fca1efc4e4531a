"""The Python API: what the ``fuse`` command does, callable from a script or a notebook.

    import fusion_tf
    result = fusion_tf.fuse(["near.jpg", "far.jpg"], model="gacn")      # paths or uint8 arrays
    fuser = fusion_tf.load_fuser("gacn", tile=512)                      # load once …
    for stack in stacks:
        fusion_tf.fuse(stack, fuser=fuser).fused                         # … fuse many

Weights resolve exactly as on the command line (:mod:`fusion_tf.weights.resolve`: the shipped file
when ``weights`` is None).  The CLI is a thin caller of these functions, so both paths are one.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterable, Sequence

import numpy as np

from fusion_tf.registry import DEFAULT_MODEL


def load_fuser(model: str = DEFAULT_MODEL, weights: str | os.PathLike | None = None, **options):
    """A loaded model ready to fuse many groups (``options``: ``tile``, ``backend``, ``multi``, …)."""
    from fusion_tf import registry

    return registry.load_fuser(model, None if weights is None else str(weights), **options)


def _frame(item) -> np.ndarray:
    from fusion_tf.core.imageio import read_image

    return read_image(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item)


def fuse(images: Sequence, model: str = DEFAULT_MODEL, weights: str | os.PathLike | None = None, *,
         fuser=None, progress: bool | None = False, align: str = "none", align_reference="middle", **options):
    """Fuse one group of ≥ 2 same-size images, in order (first = near focus) → ``FusionResult``.

    ``images``: file paths (read lazily, one frame in memory at a time for stacks) or uint8 arrays.
    ``fuser``: reuse a :func:`load_fuser` result instead of loading ``model``/``weights`` again.
    ``progress``: a frame bar on stderr (None: only on a terminal).  Two images are fused as the
    papers' pairs; more stream through the model's multi-image rule (serial; GACN: calibration unless
    ``multi="serial"``).  ``align``: register hand-held frames first (``translation``, ``euclidean``,
    ``affine``, ``homography``; :mod:`fusion_tf.core.registration`) to ``align_reference``
    (``"first"``, ``"middle"`` or an index) and fuse the area every frame covers; off by default, so
    benchmark pairs stay untouched.
    """
    from fusion_tf.errors import InputImageError

    images = list(images)
    if len(images) < 2:
        raise InputImageError(f"need at least 2 images, got {len(images)}")
    if fuser is None:
        fuser = load_fuser(model, weights, **options)
    elif options or weights is not None:
        raise TypeError("give either fuser= or model/weights/options, not both")
    if align != "none":
        images = _registered(images, align, align_reference)
    if len(images) == 2:
        from fusion_tf.core.imageio import check_same_size, match_colour

        pair = [_frame(x) for x in images]
        check_same_size(pair, [str(x) if isinstance(x, (str, os.PathLike)) else f"image {i + 1}"
                               for i, x in enumerate(images)])
        with _elapsed(f"fusing with {fuser.name}", progress):  # one long call (MFIF-GAN: ~13 s a 520² pair)
            return fuser.fuse(match_colour(pair))
    frames: Iterable[np.ndarray] = (_frame(x) for x in images)
    if progress is not False:
        import sys

        from tqdm import tqdm

        frames = tqdm(frames, total=len(images), desc=f"fusing with {fuser.name}", unit="frame", file=sys.stderr,
                      disable=None if progress is None else not progress, leave=False)
    return fuser.fuse_stream(frames, getattr(fuser, "multi", None) or "calibration")


def _registered(images: list, motion: str, reference) -> "_LazyFrames":
    """Estimate the registration on a first pass over the frames; warp them lazily on the second."""
    from fusion_tf.core.registration import register_stack

    names = [str(x) if isinstance(x, (str, os.PathLike)) else f"image {i + 1}" for i, x in enumerate(images)]
    registration = register_stack((_frame(x) for x in images), motion=motion, reference=reference,
                                  count=len(images), names=names)
    return _LazyFrames(images, registration)


class _LazyFrames(list):
    """The sources as a list whose items are read and warped only when used (one frame at a time)."""

    def __init__(self, items, registration):
        super().__init__(items)
        self.registration = registration

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i):
        return self.registration.warp(_frame(list.__getitem__(self, i)), i)


@contextlib.contextmanager
def _elapsed(desc: str, progress: bool | None):
    """A ticking "desc 00:12" line on stderr during one long call (tqdm has no progress to show inside
    a single network call, so a thread refreshes its clock); silent off a terminal or when False."""
    import sys
    import threading

    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc} {elapsed}", file=sys.stderr, leave=False,
               disable=True if progress is False else (None if progress is None else not progress))
    stop = threading.Event()

    def tick():
        while not stop.wait(0.5):
            bar.refresh()

    ticker = None if bar.disable else threading.Thread(target=tick, daemon=True)
    if ticker:
        ticker.start()
    try:
        yield
    finally:
        stop.set()
        if ticker:
            ticker.join()
        bar.close()
