"""MFIF-GAN weights in PyTorch layout: import and export of state dicts with the original key names.

The released ``110000-G.ckpt``/``-D.ckpt`` are not obtainable, but anyone who has them (or trains the
original) can convert them with :func:`convert_torch_checkpoint` (needs ``torch``) and load the
``.npz`` here.  Export (:func:`generator_state_dict`, :func:`discriminator_state_dict`) produces the
same keys and layouts, which lets the round trip be tested without the original weights and lets a
PyTorch re-implementation load our weights (``benchmarks/verify_mfifgan_torch.py``).

Key names (``model.py`` of the original):

* G: ``line1.0.line.{0,3,6}.weight`` + BN ``{1,4,7}``; SE blocks ``line1.0.line.{9..17}.{conv1,bn1,conv2,bn2}``
  and ``.se.fc.{0,2}.weight``; decoder ``decode.{0,3}.weight`` (ConvTranspose) + BN ``{1,4}``, ``decode.6.weight``.
* D (coded): ``main.{0,2,5,8,11,14,17}`` convs (bias on 0, 2, 5, 17), BN ``main.{3,6,9,12,15}``.

Every BN also has ``num_batches_tracked`` (dropped on import, written as 0 on export).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fusion_tf.core.imageio import atomic_path
from fusion_tf.errors import WeightsError
from fusion_tf.weights.torch_npz import (StateDict, assign, conv2d_kernel, conv_transpose2d_kernel,
                                         linear_kernel)

_BN_FIELDS = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
              ("running_var", "moving_variance"))


def _to_torch_conv(k: np.ndarray) -> np.ndarray:
    """Keras Conv2D (kh, kw, in, out) → PyTorch (out, in, kh, kw)."""
    return np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1)))


def _to_torch_deconv(k: np.ndarray) -> np.ndarray:
    """Keras Conv2DTranspose (kh, kw, out, in) → PyTorch ConvTranspose2d (in, out, kh, kw)."""
    return np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1)))


# ----------------------------------------------------------------------------------------------
# (key, variable, PyTorch→Keras transform, Keras→PyTorch transform) tables
# ----------------------------------------------------------------------------------------------
def _bn_entries(prefix: str, bn) -> list:
    return [(f"{prefix}.{t}", getattr(bn, k), None, None) for t, k in _BN_FIELDS]


def generator_entries(g) -> list:
    enc, p = g.line1, "line1.0.line"
    e = [(f"{p}.0.weight", enc.conv0.kernel, conv2d_kernel, _to_torch_conv), *_bn_entries(f"{p}.1", enc.bn1),
         (f"{p}.3.weight", enc.conv3.kernel, conv2d_kernel, _to_torch_conv), *_bn_entries(f"{p}.4", enc.bn4),
         (f"{p}.6.weight", enc.conv6.kernel, conv2d_kernel, _to_torch_conv), *_bn_entries(f"{p}.7", enc.bn7)]
    for i, blk in enumerate(enc.blocks):
        q = f"{p}.{9 + i}"
        e += [(f"{q}.conv1.weight", blk.conv1.kernel, conv2d_kernel, _to_torch_conv), *_bn_entries(f"{q}.bn1", blk.bn1),
              (f"{q}.conv2.weight", blk.conv2.kernel, conv2d_kernel, _to_torch_conv), *_bn_entries(f"{q}.bn2", blk.bn2),
              (f"{q}.se.fc.0.weight", blk.se.fc_0.kernel, linear_kernel, np.transpose),
              (f"{q}.se.fc.2.weight", blk.se.fc_2.kernel, linear_kernel, np.transpose)]
    e += [("decode.0.weight", g.deconv0.kernel, conv_transpose2d_kernel, _to_torch_deconv), *_bn_entries("decode.1", g.bn1),
          ("decode.3.weight", g.deconv3.kernel, conv_transpose2d_kernel, _to_torch_deconv), *_bn_entries("decode.4", g.bn4),
          ("decode.6.weight", g.conv6.kernel, conv2d_kernel, _to_torch_conv)]
    return e


def discriminator_entries(d) -> list:
    e = []
    for conv, norm, _, _, _ in d._stages():
        idx = conv.name.split("_")[-1]
        e.append((f"main.{idx}.weight", conv.kernel, conv2d_kernel, _to_torch_conv))
        if conv.use_bias:
            e.append((f"main.{idx}.bias", conv.bias, None, None))
        if norm is not None:
            e += _bn_entries(f"main.{int(idx) + 1}", norm)
    idx = d.head.name.split("_")[-1]
    e += [(f"main.{idx}.weight", d.head.kernel, conv2d_kernel, _to_torch_conv), (f"main.{idx}.bias", d.head.bias, None, None)]
    return e


def _bn_prefixes(entries) -> list[str]:
    return [k[: -len(".running_var")] for k, _, _, _ in entries if k.endswith(".running_var")]


# ----------------------------------------------------------------------------------------------
# Import / export
# ----------------------------------------------------------------------------------------------
def load_state_dict(model, tensors: "StateDict | dict | str | os.PathLike", entries_fn, strip_prefix: str = "") -> None:
    """Assign every entry from a state dict; missing, mis-shaped or unused tensors raise ``WeightsError``."""
    sd = tensors if isinstance(tensors, StateDict) else (
        StateDict(dict(tensors), "state dict") if isinstance(tensors, dict) else StateDict.from_npz(tensors))
    if strip_prefix:  # checkpoints saved from nn.DataParallel carry "module."
        sd.tensors = {k[len(strip_prefix):] if k.startswith(strip_prefix) else k: v for k, v in sd.tensors.items()}
    entries = entries_fn(model)
    for key, var, to_keras, _ in entries:
        assign(var, sd.take(key, to_keras), key, sd.source)
    sd.drop([f"{p}.num_batches_tracked" for p in _bn_prefixes(entries) if f"{p}.num_batches_tracked" in sd.tensors])
    sd.check_consumed()


def export_state_dict(model, entries_fn) -> dict[str, np.ndarray]:
    """The model's weights as a PyTorch-layout state dict (``num_batches_tracked`` = 0)."""
    entries = entries_fn(model)
    out = {}
    for key, var, _, to_torch in entries:
        value = var.numpy()
        out[key] = np.ascontiguousarray(to_torch(value) if to_torch else value).astype(np.float32)
    for p in _bn_prefixes(entries):
        out[f"{p}.num_batches_tracked"] = np.zeros((), np.int64)
    return out


def generator_state_dict(g) -> dict[str, np.ndarray]:
    return export_state_dict(g, generator_entries)


def discriminator_state_dict(d) -> dict[str, np.ndarray]:
    return export_state_dict(d, discriminator_entries)


def load_generator_npz(g, path) -> None:
    """Load ``G.npz`` (original key names, PyTorch layouts) into a built :class:`Generator`."""
    load_state_dict(g, path, generator_entries, strip_prefix="module.")


def load_discriminator_npz(d, path) -> None:
    load_state_dict(d, path, discriminator_entries, strip_prefix="module.")


def save_npz(path: str | os.PathLike, state: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **state)
    return path


def convert_torch_checkpoint(ckpt: str | os.PathLike, npz: str | os.PathLike) -> Path:
    """``torch.save``'d state dict (e.g. ``110000-G.ckpt``) → ``.npz`` with the same keys (needs torch)."""
    try:
        import torch
    except ImportError:
        raise WeightsError("converting a PyTorch checkpoint needs torch (pip install torch)") from None
    state = torch.load(str(ckpt), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise WeightsError(f"{ckpt}: expected a state dict, got {type(state).__name__}")
    return save_npz(npz, {k: v.detach().cpu().numpy() for k, v in state.items()})
