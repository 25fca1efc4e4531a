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
    """A loaded model ready to fuse many groups (``options``: ``tile`` — pixels, or ``"none"`` —,
    ``backend``, ``multi``, …).  ``tile="auto"`` is decided per image size, so only :func:`fuse`
    without ``fuser=`` takes it."""
    from fusion_tf import registry
    from fusion_tf.errors import InputImageError

    if options.get("tile") == "none":
        options["tile"] = None
    elif options.get("tile") == "auto":
        raise InputImageError("tile='auto' depends on the image size: fusion_tf.fuse() decides it; "
                              "give load_fuser a number of pixels or 'none'")
    return registry.load_fuser(model, None if weights is None else str(weights), **options)


def _plan_tile(model: str, weights, first, options: dict) -> dict:
    """``options`` with ``tile`` (default ``auto``) planned for the size of ``first`` (a path or an
    array): :func:`fusion_tf.memory.planned_options`; its note, when it tiles, as a warning."""
    import warnings

    from fusion_tf import memory
    from fusion_tf.core.imageio import image_size
    from fusion_tf.weights.resolve import model_and_weights

    if options.get("tile", memory.DEFAULT_TILE) != "auto":
        return options
    height, width = image_size(first) if isinstance(first, (str, os.PathLike)) else np.shape(first)[:2]
    options, note = memory.planned_options(model_and_weights(model, weights)[0], height, width, options)
    if note:
        warnings.warn(note, RuntimeWarning, stacklevel=3)
    return options


def _labels(items: Sequence) -> list[str]:
    """How messages name the sources: file paths as given, arrays by position."""
    return [str(x) if isinstance(x, (str, os.PathLike)) else f"image {i + 1}" for i, x in enumerate(items)]


def _frame(item) -> np.ndarray:
    from fusion_tf.core.imageio import read_image

    return read_image(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item)


def fuse(images: Sequence, model: str = DEFAULT_MODEL, weights: str | os.PathLike | None = None, *,
         fuser=None, progress: bool | None = False, align: str = "none", align_reference="middle",
         align_crop: bool = True, align_photometric: bool = False, transforms: str | os.PathLike | None = None,
         output_depth: int | None = None, depth: bool = True, **options):
    """Fuse one group of ≥ 2 same-size images, in order (first = near focus) → ``FusionResult``.

    ``images``: file paths (read lazily, one frame in memory at a time for stacks) or uint8 or uint16
    arrays (one depth per group).  ``fused`` has the sources' depth unless ``output_depth`` (8 or 16)
    converts it (:func:`~fusion_tf.core.imageio.to_depth`); ``metadata`` holds the first source file's
    EXIF and ICC profile, for :func:`write_result`.
    ``fuser``: reuse a :func:`load_fuser` result instead of loading ``model``/``weights`` again.
    ``tile`` (an option): ``"auto"`` by default, whole images unless they would not fit the
    available memory, then tiles (:mod:`fusion_tf.memory`, with a ``RuntimeWarning`` saying so).
    ``progress``: a frame bar on stderr (None: only on a terminal).  Two images are fused as the
    papers' pairs; more stream through the model's multi-image rule (serial; GACN: calibration unless
    ``multi="serial"``).  ``align``: register hand-held frames first (``translation``, ``euclidean``,
    ``affine``, ``homography``; :mod:`fusion_tf.core.registration`) to ``align_reference``
    (``"first"``, ``"middle"`` or an index) and fuse the area every frame covers (``align_crop=False``:
    full size, borders replicated); off by default, so benchmark pairs stay untouched.  ``transforms``:
    reuse a saved alignment (:func:`register` → ``Registration.to_json``) instead of estimating one.
    ``depth``: compute ``result.depth`` (:func:`write_depth`); ``False`` leaves it None and spares
    MFF-GAN and GIPC-GAN a focus measure of every frame (``fuse`` asks only with ``--save-depth``).
    """
    from fusion_tf.errors import InputImageError

    images = list(images)
    if len(images) < 2:
        raise InputImageError(f"need at least 2 images, got {len(images)}")
    if output_depth not in (None, 8, 16):
        raise ValueError(f"output_depth must be 8 or 16, got {output_depth}")
    if fuser is None:
        fuser = load_fuser(model, weights, **_plan_tile(model, weights, images[0], options))
    elif options or weights is not None:
        raise TypeError("give either fuser= or model/weights/options, not both")
    first, names = images[0], _labels(images)
    if align != "none" or transforms is not None:
        registration = register(images, align, align_reference, align_crop, align_photometric, transforms)
        images = _LazyFrames(images, registration)
    if len(images) == 2:
        from fusion_tf.core.imageio import check_same_size, match_colour

        pair = [_frame(x) for x in images]
        check_same_size(pair, names)
        with _elapsed(f"fusing with {fuser.name}", progress):  # one long call (MFIF-GAN: ~13 s a 520² pair)
            return _finish(fuser.fuse(match_colour(pair), depth=depth), first, output_depth)
    frames: Iterable[np.ndarray] = (_frame(x) for x in images)
    if progress is not False:
        import sys

        from tqdm import tqdm

        frames = tqdm(frames, total=len(images), desc=f"fusing with {fuser.name}", unit="frame", file=sys.stderr,
                      disable=None if progress is None else not progress, leave=False)
    strategy = getattr(fuser, "multi", None) or "calibration"
    return _finish(fuser.fuse_stream(frames, strategy, depth=depth), first, output_depth)


def _finish(result, first, output_depth: int | None):
    """A fuser's result with the first source file's metadata and, if asked, another bit depth."""
    from fusion_tf.core.imageio import read_metadata, to_depth

    if isinstance(first, (str, os.PathLike)):
        result.metadata = read_metadata(first)
    if output_depth is not None:
        result.fused = to_depth(result.fused, output_depth)
    return result


def write_result(result, path: str | os.PathLike, *, output_depth: int | None = None, quality: int | None = None):
    """Write ``result.fused`` as ``fuse -o`` does: in the sources' bit depth unless ``output_depth`` (8 or
    16; JPEG, BMP and WebP hold 8 bits only, so a 16-bit result must be given ``output_depth=8`` for them),
    with the first source's EXIF (orientation reset to 1) and ICC profile where the format holds them."""
    from fusion_tf.core.imageio import write_image

    return write_image(path, result.fused, quality, metadata=result.metadata, depth=output_depth)


def write_depth(result, path: str | os.PathLike, preview: str | os.PathLike | None = None):
    """Write ``result.depth`` (per pixel, the index of the frame the fused image takes; rules per model
    in :mod:`fusion_tf.core.focus`) as a 16-bit PNG, frame i of N → ``round(i·65535 / (N − 1))``, and
    optionally a colourised 8-bit RGB ``preview`` PNG (what ``fuse --save-depth/--depth-preview`` write)."""
    from fusion_tf.core.focus import write_depth_map

    if result.depth is None or result.frames is None:
        raise ValueError("this result has no depth map")
    return write_depth_map(path, result.depth, result.frames, preview)


def register(images: Sequence, motion: str = "affine", reference="middle", crop: bool = True,
             photometric: bool = False, transforms: str | os.PathLike | None = None):
    """The :class:`~fusion_tf.core.registration.Registration` of a stack (paths or arrays): estimated in
    one pass over the frames, or loaded from ``transforms`` (a saved JSON, checked against the stack)."""
    from fusion_tf.core.registration import Registration, register_stack

    images = list(images)
    if transforms is not None:
        h, w = _frame(images[0]).shape[:2]
        return Registration.from_json(transforms, frame_size=(w, h), count=len(images))
    names = _labels(images)
    return register_stack((_frame(x) for x in images), motion=motion, reference=reference, photometric=photometric,
                          crop=crop, count=len(images), names=names)


def align(images: Sequence, out_dir: str | os.PathLike, motion: str = "affine", reference="middle",
          crop: bool = True, photometric: bool = False, transforms: str | os.PathLike | None = None,
          save_transforms: str | os.PathLike | None = None) -> list:
    """Register a stack and write its frames, aligned, as ``out_dir/<stem>.png`` (lossless), plus the
    transforms as JSON (default ``out_dir/transforms.json``) for reuse on other stacks of the same rig.
    Returns the written paths."""
    from pathlib import Path

    from fusion_tf.core.imageio import write_image

    images = list(images)
    registration = register(images, motion, reference, crop, photometric, transforms)
    out_dir = Path(out_dir)
    stems = [Path(x).stem if isinstance(x, (str, os.PathLike)) else f"frame{i + 1:03d}" for i, x in enumerate(images)]
    if len(set(stems)) != len(stems):
        stems = [f"{i + 1:03d}-{s}" for i, s in enumerate(stems)]
    written = []
    for stem, frame in zip(stems, _LazyFrames(images, registration)):
        written.append(write_image(out_dir / f"{stem}.png", frame))
    registration.to_json(save_transforms or out_dir / "transforms.json")
    return written


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

    if progress is False or (progress is None and not _is_terminal(sys.stderr)):
        yield  # tqdm would be disabled: not worth importing it (~50 ms of a one-pair process)
        return
    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc} {elapsed}", file=sys.stderr, leave=False)
    stop = threading.Event()

    def tick():
        while not stop.wait(0.5):
            bar.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        bar.close()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
