"""Reading, validating and atomically writing images and arrays.

Decoding goes through Pillow because MFF-GAN's and GACN's reference outputs were produced from
Pillow-decoded inputs (OpenCV's JPEG decoder can differ by a grey level); only 16-bit colour, which
Pillow cannot hold, is decoded (and, for PNG, encoded) by OpenCV.  Every failure becomes an
:class:`~fusion_tf.errors.InputImageError` with the file name in one line.  Writers go through a
temporary file in the destination folder and ``os.replace`` so an interrupted or failed run never
leaves a partial output file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
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


def read_image(path: str | os.PathLike, mode: str = "keep", depth: int | None = None) -> np.ndarray:
    """Read an image as uint8 (8-bit files) or uint16 (16-bit PNG/TIFF): H×W (grey) or H×W×3 (RGB).

    ``mode``: ``"keep"`` (grey stays grey, anything else becomes RGB), ``"grey"`` (Pillow ``L``,
    i.e. ITU-R 601 luma with fixed-point rounding — the rule MFF-GAN's loader used) or ``"rgb"``.
    Alpha channels are dropped; palette images are expanded; the EXIF orientation is applied (phone
    photos come out upright).  16-bit grey (Pillow ``I;16*``, or ``I`` holding 0…65535) and 16-bit
    RGB (which Pillow cannot hold: decoded by OpenCV) stay 16-bit unless ``depth=8`` (round(x/257));
    float images are refused with a clear message rather than silently rescaled.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise InputImageError(f"{path} is a folder, not an image")
    if not path.is_file():
        raise InputImageError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            if _sixteen_bit_colour(im):
                arr = _read_colour16(path, im, mode)
            else:
                im.load()
                ImageOps.exif_transpose(im, in_place=True)
                if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                    arr = _grey16(path, im, mode)
                elif im.mode == "F" or im.mode.startswith("I"):
                    raise InputImageError(f"{path}: {im.mode} images are not supported; convert to 8- or 16-bit")
                else:
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
    return arr if depth is None else to_depth(arr, depth)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file from its header, without decoding it (memory is planned
    before a large file is read: :mod:`fusion_tf.memory`); the EXIF orientation is not applied.
    Unreadable files fail as in :func:`read_image`."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(f"cannot read image {path}: {exc}") from None
    return height, width


def _sixteen_bit_colour(im) -> bool:
    """Whether an opened (not yet loaded) Pillow image holds 16-bit colour, which Pillow would truncate
    to 8 bits (its decoder's raw mode, e.g. PNG ``RGB;16B`` or TIFF ``RGB;16N``, tells)."""
    if im.mode.startswith("I") or not im.tile:
        return False
    args = im.tile[0].args
    raw = args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")
    return ";16" in raw


def _read_colour16(path: Path, im, mode: str) -> np.ndarray:
    """16-bit RGB(A) / grey+alpha through OpenCV (BGR → RGB, alpha dropped), EXIF orientation applied."""
    import cv2

    arr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)  # no orientation applied
    if arr is None or arr.dtype != np.uint16:
        raise InputImageError(f"cannot read 16-bit image {path}")
    grey_source = im.mode in ("L", "LA")
    if arr.ndim == 3:
        arr = arr[..., 0] if grey_source else arr[..., 2::-1]
    arr = _orient(arr, im.getexif().get(0x0112, 1))
    return np.ascontiguousarray(_grey_mode(arr, mode))


def _grey16(path: Path, im, mode: str) -> np.ndarray:
    """A Pillow 16-bit (or 32-bit integer) grey image → uint16, refusing values beyond 0…65535."""
    arr = np.asarray(im)
    if arr.dtype != np.uint16:
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputImageError(f"{path}: 32-bit integer values outside 0…65535 are not supported")
        arr = arr.astype(np.uint16)
    return np.ascontiguousarray(_grey_mode(arr, mode))


def _grey_mode(arr: np.ndarray, mode: str) -> np.ndarray:
    """``mode`` for 16-bit arrays: RGB → grey by Pillow's ``L`` rule (same fixed-point weights), grey → RGB."""
    if mode == "grey" and arr.ndim == 3:
        w = arr.astype(np.uint64)
        return ((w[..., 0] * 19595 + w[..., 1] * 38470 + w[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint16)
    if mode == "rgb" and arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=-1)
    return arr


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 2…8 applied to an array, as ``PIL.ImageOps.exif_transpose`` does to an image."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
           8: lambda a: np.rot90(a, 1)}
    return ops[orientation](arr) if orientation in ops else arr


def to_depth(image: np.ndarray, bits: int) -> np.ndarray:
    """uint8/uint16 → ``bits`` (8 or 16): 8 → 16 is ×257 (exact: 255 → 65535), 16 → 8 is round(x/257)."""
    image = np.asarray(image)
    if bits not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bits}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected a uint8 or uint16 image, got {image.dtype}")
    if bits == 8:
        return image if image.dtype == np.uint8 else ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return image if image.dtype == np.uint16 else image.astype(np.uint16) * np.uint16(257)


def read_images(paths: Sequence[str | os.PathLike], mode: str = "keep", min_count: int = 2,
                depth: int | None = None) -> list[np.ndarray]:
    """Read a group of source images that must share one size; mixed grey/colour become RGB."""
    if len(paths) < min_count:
        raise InputImageError(f"need at least {min_count} images, got {len(paths)}")
    images = [read_image(p, mode, depth) for p in paths]
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


@dataclass(frozen=True)
class ImageMetadata:
    """What an output inherits from its first source: raw EXIF (``Exif\\0\\0`` + TIFF block) and ICC profile."""

    exif: bytes | None = None
    icc_profile: bytes | None = None

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc_profile)


#: TIFF tags describing a file's own pixel layout: meaningless (or harmful) once copied into another file
_LAYOUT_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320,
                          322, 323, 324, 325, 338, 339, 340, 341, 347, 530, 531, 532, 34675})
_POINTER_TAGS = frozenset({0x8769, 0x8825, 0xA005})  # EXIF, GPS and interoperability sub-IFDs
ORIENTATION = 0x0112


def read_metadata(path: str | os.PathLike) -> ImageMetadata:
    """The EXIF block (orientation reset to 1, since :func:`read_image` returns upright pixels; a TIFF's
    layout tags dropped) and ICC profile of an image file; empty for files without them."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            icc = im.info.get("icc_profile") or None
            exif = im.getexif()
            for tag in _LAYOUT_TAGS & set(exif):
                del exif[tag]
            return ImageMetadata(_upright_exif(exif) if len(exif) else None, icc)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(f"cannot read image {path}: {exc}") from None


def _upright_exif(exif) -> bytes:
    """EXIF (a ``PIL.Image.Exif`` or its bytes) with the orientation tag set to 1, as bytes."""
    from PIL import Image

    if isinstance(exif, (bytes, bytearray)):
        exif, raw = Image.Exif(), exif
        exif.load(bytes(raw))
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    return exif.tobytes()


#: zlib level of PNG outputs.  Pillow's default (6) spent 0.11 CPU-s encoding a 520×520 RGB result, a
#: third of MFF-GAN's whole per-pair time in a batch; level 1 (OpenCV's default too) took 0.018 s for a
#: file 11 % larger.  PNG is lossless either way: the pixels do not change.
PNG_COMPRESS_LEVEL = 1


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int | None = None, *,
                metadata: ImageMetadata | None = None, depth: int | None = None) -> Path:
    """Write a uint8 or uint16 H×W or H×W×3 image atomically; format from the suffix (JPEG ``quality`` optional).

    ``depth`` (8 or 16) converts first (:func:`to_depth`); None keeps the array's.  16-bit goes to PNG and
    TIFF only: JPEG, BMP, GIF and WebP hold 8 bits, and a 16-bit image meant for them is refused rather
    than silently reduced (``depth=8``, the CLI's ``--output-depth 8``, asks for that).  ``metadata``
    (the first source's, :func:`read_metadata`): EXIF and ICC profile written to JPEG, PNG, TIFF and WebP,
    with the EXIF orientation set to 1 (the pixels are upright already).
    """
    from PIL import Image

    path = Path(path)
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_image expects uint8 or uint16, got {image.dtype}")
    if depth is not None:
        image = to_depth(image, depth)
    fmt = check_output_depth(path, 8 * image.itemsize)
    kwargs = {"quality": quality} if quality is not None and fmt == "JPEG" else {}
    if fmt == "PNG":
        kwargs["compress_level"] = PNG_COMPRESS_LEVEL
    exif = icc = None
    if metadata and fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        exif = _upright_exif(metadata.exif) if metadata.exif else None
        icc = metadata.icc_profile
        kwargs.update({k: v for k, v in (("exif", exif), ("icc_profile", icc)) if v})
    with atomic_path(path) as tmp:
        if image.dtype == np.uint16 and image.ndim == 3:  # 48-bit RGB: beyond Pillow's modes
            _write_rgb16(tmp, image, fmt, exif, icc)
        else:
            Image.fromarray(image).save(tmp, format=fmt, **kwargs)
    return path


def check_output_depth(path: str | os.PathLike, bits: int) -> str:
    """The Pillow format name of ``path``'s suffix, refusing unknown suffixes and 16 bits for a format
    holding 8 (callers can check before the work, as :func:`write_image` does before writing)."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputImageError(f"unknown image format for output {path} (use .png, .jpg, .tif, .bmp)")
    if bits == 16 and fmt not in ("PNG", "TIFF"):
        raise InputImageError(f"{path}: {fmt} holds 8 bits per channel and this image has 16; "
                              "write .png or .tif, or ask for 8 bits (--output-depth 8)")
    return fmt


def _write_rgb16(path: Path, image: np.ndarray, fmt: str, exif: bytes | None, icc: bytes | None) -> None:
    """16-bit RGB: PNG through OpenCV (EXIF and ICC chunks included), TIFF as one uncompressed strip
    with Pillow's tag writer (OpenCV's TIFF encoder takes no metadata)."""
    if fmt == "PNG":
        import cv2

        kinds, chunks = [], []
        if exif:
            kinds.append(cv2.IMAGE_METADATA_EXIF)  # a PNG eXIf chunk has no "Exif\0\0" header
            chunks.append(np.frombuffer(exif[6:] if exif.startswith(b"Exif\x00\x00") else exif, np.uint8))
        if icc:
            kinds.append(cv2.IMAGE_METADATA_ICCP)
            chunks.append(np.frombuffer(icc, np.uint8))
        bgr = np.ascontiguousarray(image[..., ::-1])
        ok = cv2.imwriteWithMetadata(str(path), bgr, kinds, chunks) if kinds else cv2.imwrite(str(path), bgr)
        if not ok:
            raise InputImageError(f"cannot write {path}")
        return
    path.write_bytes(_tiff_rgb16(image, exif, icc))


def _tiff_rgb16(image: np.ndarray, exif: bytes | None, icc: bytes | None) -> bytes:
    """A baseline little-endian TIFF (RGB, 16 bits a sample, one uncompressed strip) with the ICC profile
    and the EXIF tags (its main-IFD tags and EXIF/GPS sub-IFDs; EXIF that Pillow cannot re-encode is left out)."""
    import struct

    from PIL import Image, TiffImagePlugin

    height, width, _ = image.shape
    layout = {256: width, 257: height, 258: (16, 16, 16), 259: 1, 262: 2, 273: 0, 277: 3, 278: height,
              279: image.nbytes, 284: 1}  # StripOffsets 0: Pillow adds the offset of the data behind the IFD
    extra = {}
    if exif:
        tags = Image.Exif()
        tags.load(exif)
        extra = {t: v for t, v in tags.items() if t not in _LAYOUT_TAGS | _POINTER_TAGS}
        for pointer in (0x8769, 0x8825):
            sub = {t: v for t, v in tags.get_ifd(pointer).items() if t not in _POINTER_TAGS}
            if sub:
                extra[pointer] = sub
    if icc:
        extra[34675] = icc

    def ifd_bytes(tags: dict) -> bytes:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
        for tag, value in tags.items():
            ifd[tag] = value
        return ifd.tobytes(offset=8)

    try:
        block = ifd_bytes({**extra, **layout})
    except Exception:  # an exotic EXIF value: keep the ICC profile and the pixels
        block = ifd_bytes({**({34675: icc} if icc else {}), **layout})
    return b"II*\x00" + struct.pack("<I", 8) + block + image.astype("<u2").tobytes()


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
