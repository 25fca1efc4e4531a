"""Inference backends for the networks: TensorFlow (default) or ONNX Runtime (``--backend onnxruntime``).

Every fuser runs its network through one callable made by :func:`network`: numpy or tensors in,
arrays out.  Pre- and post-processing (colour conversion, SRR, guided filter, calibration) stay in the
fuser, so both backends share them; only the learned network changes engine.

ONNX path: the network's ``tf.function`` is converted by tf2onnx (dynamic N, H, W) once and cached as
``<cache>/onnx/<name>-<weights sha256>-tf2onnx<version>-opset<N>-v<format>.onnx``, written atomically,
so new weights, a new converter or a new conversion recipe never reuse a stale graph.  The cache is
``$FUSION_TF_CACHE`` or ``~/.cache/fusion_tf``.  onnxruntime runs it on the CPU provider.  The two
packages are an optional extra (``pip install -e ".[onnx]"``), imported only when the backend is asked for.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from fusion_tf.errors import FusionError

BACKENDS = ("tf", "onnxruntime")
#: ONNX opset the conversion targets (onnxruntime ≥ 1.14 runs it)
OPSET = 17
#: bump when the conversion recipe changes, so cached files from the old recipe are not reused
CACHE_FORMAT = 1


class BackendError(FusionError):
    """The requested backend cannot run here (missing packages, failed conversion)."""


def cache_dir() -> Path:
    return Path(os.environ.get("FUSION_TF_CACHE") or Path.home() / ".cache" / "fusion_tf")


def weights_digest(variables: Sequence) -> str:
    """sha256 over every variable's dtype, shape and bytes, in order: identifies the weights loaded,
    wherever they came from (TF1 checkpoint, npz, .weights.h5)."""
    h = hashlib.sha256()
    for v in variables:
        a = np.ascontiguousarray(v.numpy())
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _onnx_modules():
    try:
        import onnxruntime
        import tf2onnx
    except ImportError as exc:
        raise BackendError(f"--backend onnxruntime needs the optional packages onnxruntime and tf2onnx "
                           f"(pip install 'fusion_tf[onnx]'); {exc.name} is not installed") from None
    return onnxruntime, tf2onnx


class OnnxNetwork:
    """A network ``fn`` converted to ONNX (cached) and run by onnxruntime; call it like ``fn``."""

    def __init__(self, fn: Callable, input_signature: Sequence[tf.TensorSpec], name: str, variables: Sequence):
        ort, tf2onnx = _onnx_modules()
        digest = weights_digest(variables)
        self.path = cache_dir() / "onnx" / (
            f"{name}-{digest[:20]}-tf2onnx{tf2onnx.__version__}-opset{OPSET}-v{CACHE_FORMAT}.onnx")
        if not self.path.is_file():
            self._convert(tf2onnx, fn, input_signature)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # no per-node placement warnings
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # e.g. a file damaged outside this program: say which one
            raise BackendError(f"{self.path}: onnxruntime cannot load it ({exc}); delete it to convert again") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def _convert(self, tf2onnx, fn, input_signature) -> None:
        from fusion_tf.core.imageio import atomic_path

        # named specs go to the converter only: a tf.function that already has a signature refuses them
        specs = [tf.TensorSpec(s.shape, s.dtype, name=f"input_{i}") for i, s in enumerate(input_signature)]
        try:
            with atomic_path(self.path) as tmp:
                tf2onnx.convert.from_function(tf.function(fn), input_signature=specs, opset=OPSET,
                                              output_path=str(tmp))
        except Exception as exc:  # whatever the converter trips on, the user gets one line
            raise BackendError(f"tf2onnx could not convert {self.path.name}: {exc}") from None

    def __call__(self, *inputs):
        feed = {n: np.ascontiguousarray(np.asarray(x, np.float32)) for n, x in zip(self.input_names, inputs)}
        outputs = self.session.run(None, feed)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def network(fn: Callable, input_signature: Sequence[tf.TensorSpec], *, name: str, variables: Sequence,
            backend: str | None = None, jit_compile: bool = False) -> Callable:
    """The callable a fuser runs its network through.

    ``backend`` None or ``"tf"``: ``tf.function`` with ``input_signature`` (dynamic shapes, one trace;
    ``jit_compile`` for XLA).  ``"onnxruntime"``: :class:`OnnxNetwork`, cached under ``name`` and a
    digest of ``variables`` (the weights ``fn`` reads).  Outputs: tensors (TF) or arrays (ONNX);
    ``np.asarray`` takes both.
    """
    if backend in (None, "tf"):
        return tf.function(fn, input_signature=input_signature, jit_compile=jit_compile)
    if backend != "onnxruntime":
        raise BackendError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if jit_compile:
        raise BackendError("--jit XLA-compiles the TF backend; it does not apply to --backend onnxruntime")
    return OnnxNetwork(fn, input_signature, name, variables)
