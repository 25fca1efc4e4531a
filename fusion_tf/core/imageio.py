"""Reading, validating and atomically writing images and arrays.

Decoding goes through Pillow because MFF-GAN's and GACN's reference outputs were produced from
Pillow-decoded inputs (OpenCV's JPEG decoder can differ by a grey level).  Every failure becomes an
:class:`~fusion_tf.errors.InputImageError` with the file name in one line.  Writers go through a
temporary file in the destination folder and ``os.replace`` so an interrupted or failed run never
leaves a partial output file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fusion_tf.errors import InputImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def natural_key(path: str | os.PathLike) -> list:
    """Sort key that orders ``2.jpg`` before ``10.jpg`` (the originals sort by integer file name)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", Path(path).name)]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of ``folder`` in natural order; raises if the folder is missing or has none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputImageError(f"not a folder: {folder}")
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
    if not files:
        raise InputImageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def read_image(path: str | os.PathLike, mode: str = "keep") -> np.ndarray:
    """Read an 8-bit image as uint8: H×W (grey) or H×W×3 (RGB).

    ``mode``: ``"keep"`` (grey stays grey, anything else becomes RGB), ``"grey"`` (Pillow ``L``,
    i.e. ITU-R 601 luma with fixed-point rounding — the rule MFF-GAN's loader used) or ``"rgb"``.
    Alpha channels are dropped; palette images are expanded.  16-bit and float images are refused
    with a clear message rather than silently rescaled.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise InputImageError(f"{path} is a folder, not an image")
    if not path.is_file():
        raise InputImageError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                raise InputImageError(f"{path}: {im.mode} images are not supported; convert to 8-bit")
            if mode == "grey":
                im = im.convert("L")
            elif mode == "rgb" or im.mode not in ("L", "1"):
                im = im.convert("RGB")
            else:
                im = im.convert("L")
            arr = np.asarray(im, dtype=np.uint8).copy()
    except InputImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(f"cannot read image {path}: {exc}") from None
    if min(arr.shape[:2]) < 1:
        raise InputImageError(f"empty image: {path}")
    return arr


def read_images(paths: Sequence[str | os.PathLike], mode: str = "keep", min_count: int = 2) -> list[np.ndarray]:
    """Read a group of source images that must share one size; mixed grey/colour become RGB."""
    if len(paths) < min_count:
        raise InputImageError(f"need at least {min_count} images, got {len(paths)}")
    images = [read_image(p, mode) for p in paths]
    check_same_size(images, [str(p) for p in paths])
    return match_colour(images)


def match_colour(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Grey sources next to colour ones become RGB (every model needs one colour mode per group)."""
    if any(im.ndim == 3 for im in images):
        return [np.repeat(im[..., None], 3, axis=-1) if im.ndim == 2 else im for im in images]
    return list(images)


def check_same_size(images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> None:
    """Raise :class:`InputImageError` unless all images have the same height and width."""
    names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(images))]
    ref = images[0].shape[:2]
    for im, name in zip(images[1:], names[1:]):
        if im.shape[:2] != ref:
            raise InputImageError(
                f"size mismatch: {names[0]} is {ref[1]}×{ref[0]} but {name} is {im.shape[1]}×{im.shape[0]} (W×H)"
            )


def check_outputs(outputs: dict, inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Refuse unusable output paths before any work is done (``outputs``: flag → path or None).

    An output that resolves to one of the inputs (``fuse a.jpg b.jpg -o a.jpg``), that is an existing
    folder, that lies under a file, or that two flags share would lose the user's data or a whole run's
    work at the very end, so each is one clear line up front.
    """
    sources = {Path(p).resolve(): str(p) for p in inputs}
    seen: dict[Path, str] = {}
    for flag, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        real = path.resolve()
        if real in sources:
            raise InputImageError(f"{flag} {value} is one of the input images; refusing to overwrite it")
        if real in seen:
            raise InputImageError(f"{flag} and {seen[real]} name the same file: {value}")
        seen[real] = flag
        if path.is_dir():
            raise InputImageError(f"{flag} {value} is a folder; give a file name")
        blocker = next((q for q in real.parents if q.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise InputImageError(f"{flag} {value}: {blocker} is a file, not a folder")
        if blocker is not None and not os.access(blocker, os.W_OK):
            raise InputImageError(f"{flag} {value}: no permission to write in {blocker}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place, on error delete it."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    # keep the full suffix (".weights.h5") — some writers check it
    suffix = "".join(path.suffixes[-2:]) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give outputs the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int | None = None) -> Path:
    """Write a uint8 H×W or H×W×3 image atomically; format from the suffix (JPEG ``quality`` optional)."""
    from PIL import Image

    path = Path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"write_image expects uint8, got {image.dtype}")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputImageError(f"unknown image format for output {path} (use .png, .jpg, .tif, .bmp)")
    kwargs = {"quality": quality} if quality is not None and fmt == "JPEG" else {}
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **kwargs)
    return path


def write_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save a NumPy array atomically (``np.save`` would append ``.npy`` to a temporary name)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
    return path


#: Source-naming conventions, tried in order: ``name_1``/``name_2``, ``name-A``/``name-B``, ``name_A``/``name_B``.
_SOURCE_PATTERNS = (
    re.compile(r"^(?P<name>.+)_(?P<idx>\d+)$"),
    re.compile(r"^(?P<name>.+)-(?P<idx>[A-Za-z])$"),
    re.compile(r"^(?P<name>.+)_(?P<idx>[A-Za-z])$"),
)


def group_sources(folder: str | os.PathLike, min_sources: int = 2) -> dict[str, list[Path]]:
    """Group a folder of source images into ``{image_name: [source1, source2, ...]}``.

    Recognises ``<name>_1.png``/``<name>_2.png`` (…``_3``), ``<name>-A.jpg``/``-B`` (…``-C``) and
    ``<name>_A``/``_B``; sources are ordered by their index/letter (first = near focus).  Files that
    fit no pattern, or groups with fewer than ``min_sources`` members, are reported as errors rather
    than dropped silently.
    """
    groups: dict[str, list[tuple[str, Path]]] = {}
    unmatched = []
    for path in list_images(folder):
        for pattern in _SOURCE_PATTERNS:
            m = pattern.match(path.stem)
            if m:
                idx = m["idx"]
                key = int(idx) if idx.isdigit() else ord(idx.upper()) - ord("A") + 1
                groups.setdefault(m["name"], []).append((key, path))
                break
        else:
            unmatched.append(path.name)
    if unmatched:
        raise InputImageError(
            f"{folder}: cannot tell which group {unmatched[0]} belongs to "
            f"(expected <name>_1/_2, <name>-A/-B or <name>_A/_B; {len(unmatched)} such files)"
        )
    out = {}
    for name in sorted(groups, key=natural_key):
        members = sorted(groups[name])
        if len(members) < min_sources:
            raise InputImageError(f"{folder}: group {name!r} has {len(members)} source(s), need {min_sources}")
        out[name] = [p for _, p in members]
    return out
