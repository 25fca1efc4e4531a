"""Dense-window patch stores in HDF5 (MFF-GAN; reusable for GIPC-GAN's triplets).

Two layouts, both read by :func:`open_patch_store`:

``original``  MFF-GAN's TF1 layout: ``<dir>/Train_near/train.h5`` and ``<dir>/Train_far/train.h5``,
              one dataset ``data`` of shape (N, P, P, 1).  The original stored float64 already
              normalised to [−1, 1] (``--dtype float64`` writes exactly that, and such legacy files
              are read as-is); by default we store the same patches as uint8 grey levels, 8× smaller
              and normalised on the fly to bit-identical float32 values.
``indexed``   one file holding the full source images (uint8, zero-padded to a common size) and a
              window index (image, y, x).  The same patch sequence as ``original`` for a fraction of
              the size — 202,246 float64 MFI-WHU patches would be 5.8 GB per source.

Windows are taken exactly as the original: every P×P window at stride S, row-major (outer loop over
rows), images in natural file order, no padding.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import h5py
import numpy as np

from fusion_tf.core.imageio import atomic_path, check_same_size
from fusion_tf.errors import StoreError


@contextmanager
def open_store_file(path: str | os.PathLike, kind: str, required: Sequence[str], prepare: str) -> Iterator[h5py.File]:
    """Open an HDF5 training store for reading, or fail with one line that says what to do.

    Shared by every store reader: a missing file names the ``prepare`` command that makes it, a file
    that is not HDF5 (or breaks while being read) and one without the ``required`` datasets are
    ``StoreError`` s rather than h5py tracebacks.  Shape checks stay with each reader.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{kind} store not found: {path} (create it with `fusion-tf prepare {prepare}`)")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in required if k not in f]
            if missing:
                raise StoreError(f"{path}: not a {kind} store (missing datasets {missing})")
            yield f
    except OSError as exc:
        raise StoreError(f"cannot open {path} as HDF5: {exc}") from None

STORE_VERSION = 1
SOURCE_NAMES = ("near", "far")


def check_positive(**options) -> None:
    """Refuse a zero, negative or non-integer option (``patch=0`` → "--patch must be …") up front.

    Why here: a zero stride divides by zero and a zero patch fails half-way through writing, leaving
    an empty store folder; checked first, a bad option is one line and nothing is created.
    """
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise StoreError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")


def window_origins(height: int, width: int, patch: int, stride: int) -> np.ndarray:
    """Top-left corners (y, x) of all P×P windows at stride S, row-major; 520² → 47² = 2,209."""
    if height < patch or width < patch:
        return np.zeros((0, 2), np.int32)
    ys = np.arange(0, height - patch + 1, stride)
    xs = np.arange(0, width - patch + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.int32)


def normalise(patches: np.ndarray) -> np.ndarray:
    """uint8 grey levels → float32 in [−1, 1] as ``(p − 127.5) / 127.5``; float input passes through."""
    if patches.dtype == np.uint8:
        return (patches.astype(np.float32) - 127.5) / 127.5
    return patches.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def write_original_layout(
    out_dir: str | os.PathLike,
    pairs: Sequence[Sequence[np.ndarray]],
    patch: int = 60,
    stride: int = 10,
    dtype: str = "uint8",
    attrs: dict | None = None,
) -> int:
    """Write ``Train_<source>/train.h5`` stores from grey uint8 image tuples; returns the patch count."""
    if dtype not in ("uint8", "float64"):
        raise ValueError("dtype must be 'uint8' or 'float64'")
    check_positive(patch=patch, stride=stride)
    names = SOURCE_NAMES if len(pairs[0]) == 2 else tuple(f"source{i + 1}" for i in range(len(pairs[0])))
    origins = [window_origins(*imgs[0].shape[:2], patch, stride) for imgs in pairs]
    total = int(sum(len(o) for o in origins))
    if total == 0:
        raise StoreError(f"no {patch}×{patch} window fits in any of the {len(pairs)} image pairs")
    out_dir = Path(out_dir)
    made = (*reversed(out_dir.parents), out_dir, *(out_dir / f"Train_{n}" for n in names))
    created = [d for d in made if not d.exists()]
    try:
        # every source to a temp file first, all moved into place at the end: a failure leaves
        # neither a half-new store (near from this run, far from the last) nor new empty folders
        with ExitStack() as stack:
            for s, name in enumerate(names):
                path = out_dir / f"Train_{name}" / "train.h5"
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = stack.enter_context(atomic_path(path))
                with h5py.File(tmp, "w") as h5:
                    ds = h5.create_dataset(
                        "data", shape=(total, patch, patch, 1), dtype=np.dtype(dtype),
                        chunks=(min(total, 256), patch, patch, 1),
                    )
                    start = 0
                    for imgs, org in zip(pairs, origins):
                        img = imgs[s]
                        block = np.stack([img[y : y + patch, x : x + patch] for y, x in org])[..., None]
                        if dtype == "float64":
                            block = normalise(block).astype(np.float64)
                        ds[start : start + len(org)] = block
                        start += len(org)
                    h5.attrs.update({"format": "fusion_tf.original", "version": STORE_VERSION, "source": name,
                                     "patch": patch, "stride": stride, **_json_attrs(attrs)})
    except BaseException:
        for d in reversed(created):
            with suppress(OSError):
                d.rmdir()  # only folders this call made, and only while empty
        raise
    return total


def write_indexed_layout(
    path: str | os.PathLike,
    pairs: Sequence[Sequence[np.ndarray]],
    patch: int = 60,
    stride: int = 10,
    names: Sequence[str] = SOURCE_NAMES,
    attrs: dict | None = None,
) -> int:
    """Write one compact store: padded source images + window index; returns the patch count."""
    check_positive(patch=patch, stride=stride)
    for imgs in pairs:
        check_same_size(imgs)
    sizes = np.array([imgs[0].shape[:2] for imgs in pairs], np.int32)
    hmax, wmax = sizes.max(axis=0)
    index = [np.concatenate([np.full((len(o), 1), i, np.int32), o], axis=1)
             for i, o in enumerate(window_origins(h, w, patch, stride) for h, w in sizes)]
    index = np.concatenate(index) if index else np.zeros((0, 3), np.int32)
    if len(index) == 0:
        raise StoreError(f"no {patch}×{patch} window fits in any of the {len(pairs)} image pairs")
    path = Path(path)
    created = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
            for s, name in enumerate(names):
                stack = np.zeros((len(pairs), hmax, wmax), np.uint8)
                for i, imgs in enumerate(pairs):
                    stack[i, : sizes[i, 0], : sizes[i, 1]] = imgs[s]
                h5.create_dataset(name, data=stack, chunks=(1, hmax, wmax), compression="gzip", compression_opts=1)
            h5.create_dataset("sizes", data=sizes)
            h5.create_dataset("index", data=index)
            h5.attrs.update({"format": "fusion_tf.indexed", "version": STORE_VERSION, "patch": patch,
                             "stride": stride, "sources": json.dumps(list(names)), **_json_attrs(attrs)})
    except BaseException:
        for d in created:  # deepest first: only folders this call made, and only while empty
            with suppress(OSError):
                d.rmdir()
        raise
    return len(index)


def _json_attrs(attrs: dict | None) -> dict:
    return {k: v if isinstance(v, (int, float, str)) else json.dumps(v) for k, v in (attrs or {}).items()}


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
@dataclass
class PatchStore:
    """A patch store loaded into memory.

    ``patches``  {source: (N, P, P, 1) array (uint8 or normalised float)} for the original layout, or
    ``images`` {source: (M, H, W) uint8} + ``index`` (N, 3) for the indexed layout.
    """

    layout: str
    patch: int
    sources: tuple[str, ...]
    count: int
    patches: dict[str, np.ndarray] | None = None
    images: dict[str, np.ndarray] | None = None
    index: np.ndarray | None = None
    path: str = ""


def _read_original(root: Path, sources: Sequence[str]) -> PatchStore:
    arrays = {}
    for name in sources:
        path = root / f"Train_{name}" / "train.h5"
        if not path.is_file():
            raise StoreError(f"{root}: missing {path.relative_to(root)} (expected the MFF-GAN original layout)")
        try:
            with h5py.File(path, "r") as h5:
                if "data" not in h5:
                    raise StoreError(f"{path}: no dataset 'data' (found {sorted(h5.keys())})")
                data = h5["data"]
                if data.ndim != 4 or data.shape[1] != data.shape[2] or data.shape[3] != 1:
                    raise StoreError(f"{path}: dataset 'data' must have shape (N, P, P, 1), got {data.shape}")
                if data.dtype not in (np.uint8, np.float32, np.float64):
                    raise StoreError(f"{path}: dataset 'data' has unsupported dtype {data.dtype}")
                arrays[name] = data[()]
        except OSError as exc:
            raise StoreError(f"cannot read HDF5 store {path}: {exc}") from None
    counts = {n: a.shape[0] for n, a in arrays.items()}
    shapes = {a.shape[1:] for a in arrays.values()}
    if len(set(counts.values())) != 1 or len(shapes) != 1:
        raise StoreError(f"{root}: stores disagree in patch count or size: {counts}, {shapes}")
    first = next(iter(arrays.values()))
    if first.shape[0] == 0:
        raise StoreError(f"{root}: the store is empty")
    if first.dtype != np.uint8 and (np.abs(first[: min(len(first), 64)]).max() > 1.0 + 1e-6):
        raise StoreError(f"{root}: float patches must be normalised to [-1, 1] as in the original")
    return PatchStore("original", first.shape[1], tuple(sources), first.shape[0], patches=arrays, path=str(root))


def _read_indexed(path: Path, sources: Sequence[str]) -> PatchStore:
    try:
        with h5py.File(path, "r") as h5:
            missing = [k for k in (*sources, "index", "sizes") if k not in h5]
            if missing or h5.attrs.get("format") != "fusion_tf.indexed":
                raise StoreError(f"{path}: not an indexed patch store (missing {missing or 'format attribute'})")
            patch = h5.attrs.get("patch")
            if patch is None or np.ndim(patch) != 0 or not np.issubdtype(np.asarray(patch).dtype, np.integer) \
                    or int(patch) < 1:
                raise StoreError(f"{path}: indexed store without a valid 'patch' attribute (got {patch!r}); "
                                 f"write it again with `fusion-tf prepare`")
            patch = int(patch)
            images = {name: h5[name][()] for name in sources}
            index = h5["index"][()]
    except OSError as exc:
        raise StoreError(f"cannot read HDF5 store {path}: {exc}") from None
    if any(a.ndim != 3 for a in images.values()):
        raise StoreError(f"{path}: source images must be stored as (M, H, W) arrays")
    if index.ndim != 2 or index.shape[1] != 3 or len(index) == 0:
        raise StoreError(f"{path}: 'index' must be a non-empty (N, 3) array")
    m, h, w = next(iter(images.values())).shape
    if (index[:, 0].max() >= m or index[:, 1].max() + patch > h or index[:, 2].max() + patch > w
            or index.min() < 0):
        raise StoreError(f"{path}: window index points outside the stored images")
    return PatchStore("indexed", patch, tuple(sources), len(index), images=images, index=index, path=str(path))


def open_patch_store(location: str | os.PathLike, sources: Sequence[str] = SOURCE_NAMES) -> PatchStore:
    """Load a store: a directory in the original layout, or an indexed ``.h5`` file."""
    location = Path(location)
    if location.is_dir():
        return _read_original(location, sources)
    if location.is_file():
        return _read_indexed(location, sources)
    raise StoreError(f"patch store not found: {location}")
