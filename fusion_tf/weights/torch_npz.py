"""Import of PyTorch state dicts saved as ``.npz`` (original key names, PyTorch layouts) into Keras.

Generic part: layout transposes (PyTorch and Keras both cross-correlate, so no kernel flip is ever
needed, only axis permutations) and :class:`StateDict`, which tracks which tensors were consumed so an
import of a different architecture fails loudly instead of producing plausible but wrong images.
Model part: :func:`load_gacn_npz` (spec ``gacn.md`` §7).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from fusion_tf.errors import WeightsError


def conv2d_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch Conv2d weight (out, in, kh, kw) → Keras Conv2D kernel (kh, kw, in, out)."""
    return np.transpose(w, (2, 3, 1, 0))


def conv_transpose2d_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch ConvTranspose2d weight (in, out, kh, kw) → Keras Conv2DTranspose kernel (kh, kw, out, in)."""
    return np.transpose(w, (2, 3, 1, 0))


def linear_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch Linear weight (out, in) → Keras Dense kernel (in, out)."""
    return np.transpose(w)


class StateDict:
    """A loaded state dict that remembers which keys were taken or explicitly dropped."""

    def __init__(self, tensors: dict[str, np.ndarray], source: str = "state dict"):
        self.tensors = tensors
        self.source = source
        self.used: set[str] = set()

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> "StateDict":
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                tensors = {k: np.asarray(data[k]) for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise WeightsError(f"cannot read {path} as a .npz state dict: {exc}") from None
        return cls(tensors, str(path))

    def take(self, key: str, transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Return tensor ``key`` (transformed, float32) and mark it consumed."""
        if key not in self.tensors:
            raise WeightsError(f"{self.source}: tensor {key!r} missing (not the expected model?)")
        self.used.add(key)
        value = self.tensors[key]
        return np.asarray(transform(value) if transform else value, dtype=np.float32)

    def drop(self, keys: Iterable[str]) -> None:
        """Mark tensors that have no Keras counterpart (e.g. BN ``num_batches_tracked``) as handled."""
        for key in keys:
            if key not in self.tensors:
                raise WeightsError(f"{self.source}: tensor {key!r} missing (not the expected model?)")
            self.used.add(key)

    def check_consumed(self) -> None:
        leftover = sorted(set(self.tensors) - self.used)
        if leftover:
            raise WeightsError(f"{self.source}: {len(leftover)} tensors not consumed, e.g. {leftover[:3]}")


def assign(variable, value: np.ndarray, key: str, source: str) -> None:
    """Assign with a shape check that names the offending tensor."""
    if tuple(variable.shape) != tuple(value.shape):
        raise WeightsError(f"{source}: {key} has shape {tuple(value.shape)} after transposing, "
                           f"model expects {tuple(variable.shape)}")
    variable.assign(value)


def load_conv_relu_bn(sd: StateDict, block, prefix: str) -> None:
    """A ``Sequential(Conv2d, ReLU, BatchNorm2d)`` saved as ``<prefix>_Conv2d.*`` / ``<prefix>_BatchNorm.*``."""
    conv, bn = block.conv, block.bn
    k = f"{prefix}_Conv2d"
    assign(conv.kernel, sd.take(f"{k}.weight", conv2d_kernel), f"{k}.weight", sd.source)
    assign(conv.bias, sd.take(f"{k}.bias"), f"{k}.bias", sd.source)
    k = f"{prefix}_BatchNorm"
    for torch_name, var in (("weight", bn.gamma), ("bias", bn.beta),
                            ("running_mean", bn.moving_mean), ("running_var", bn.moving_variance)):
        assign(var, sd.take(f"{k}.{torch_name}"), f"{k}.{torch_name}", sd.source)
    sd.drop([f"{k}.num_batches_tracked"])


def load_gacn_npz(model, path: str | os.PathLike) -> None:
    """Load the released ``GACN.pkl`` (converted to npz) into a built :class:`~fusion_tf.models.gacn.GACN`.

    69 tensors: 61 mapped (conv/SSE kernels transposed (2,3,1,0), CSE Linear kernels transposed) and the
    8 BN ``num_batches_tracked`` counters dropped; anything else left over raises ``WeightsError``.
    """
    sd = StateDict.from_npz(path)
    if not model.built:
        model.build()
    for i in range(4):
        name = f"feature_extraction_conv{i}"
        load_conv_relu_bn(sd, getattr(model, name), f"{name}.{name}")
        se = getattr(model, f"se_{i}")
        assign(se.fc_0.kernel, sd.take(f"se_{i}.fc.0.weight", linear_kernel), f"se_{i}.fc.0.weight", sd.source)
        assign(se.fc_2.kernel, sd.take(f"se_{i}.fc.2.weight", linear_kernel), f"se_{i}.fc.2.weight", sd.source)
    for i in range(4, 9):
        se = getattr(model, f"se_{i}")
        assign(se.fc_0.kernel, sd.take(f"se_{i}.fc.0.weight", conv2d_kernel), f"se_{i}.fc.0.weight", sd.source)
    for i in range(1, 5):
        name = f"decision_path_conv{i}"
        load_conv_relu_bn(sd, getattr(model, name), f"{name}.{name}")
    sd.check_consumed()
