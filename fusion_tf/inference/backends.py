"""Inference backends for the networks: TensorFlow (default) or ONNX Runtime (``--backend onnxruntime``).

Every fuser runs its network through one callable made by :func:`network`: numpy or tensors in,
arrays out.  Pre- and post-processing (colour conversion, SRR, guided filter, calibration) stay in the
fuser, so both backends share them; only the learned network changes engine (and, for MFF-GAN and
GIPC-GAN, the depth map's focus measure, so that a run on cached graphs needs no TensorFlow at all).

ONNX path: the network's ``tf.function`` is converted by tf2onnx (dynamic N, H, W) once and cached as
``<cache>/onnx/<name>-<weights sha256>-tf2onnx<version>-opset<N>-v<format>.onnx``, written atomically,
so new weights, a new converter or a new conversion recipe never reuse a stale graph.  The cache is
``$FUSION_TF_CACHE`` or ``~/.cache/fusion_tf``.  onnxruntime runs it on the CPU provider.  The two
packages are an optional extra (``pip install -e ".[onnx]"``), imported only when the backend is asked for.
This module is the converting (TensorFlow) half; running a converted graph, and the index that lets a
later process find it without starting TensorFlow, are :mod:`fusion_tf.inference.onnx_cache`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from fusion_tf.inference.onnx_cache import (  # noqa: F401  (cache_dir: re-exported, the backend's public names)
    CACHE_FORMAT, OPSET, BackendError, OnnxNetwork, cache_dir, converter_version, load_or_discard,
    missing_packages_error, onnx_dir)

BACKENDS = ("tf", "onnxruntime")
#: conversions tried before giving up when the result disagrees with TF on the probe input
CONVERSION_ATTEMPTS = 3


class _Mismatch(Exception):
    """A converted graph disagrees with TF on the probe input (retry the conversion)."""


def _probe_inputs(input_signature: Sequence[tf.TensorSpec]) -> list[np.ndarray]:
    """Seeded inputs with the unknown dimensions set to odd sizes (batch 2): enough to expose a
    graph whose shapes or values went wrong, small enough to cost nothing."""
    rng = np.random.default_rng(0)
    shapes = [[d if d is not None else (2, 19, 23, 3)[i] for i, d in enumerate(s.shape.as_list())]
              for s in input_signature]
    return [rng.uniform(-1.0, 1.0, shape).astype(np.float32) for shape in shapes]


def _disagreement(got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> str:
    """'' when the outputs agree (shapes equal, values within 1e-4 relative to their scale)."""
    if len(got) != len(expected):
        return f"{len(got)} outputs instead of {len(expected)}"
    for g, e in zip(got, expected):
        if g.shape != e.shape:
            return f"output shape {g.shape} instead of {e.shape}"
        scale = max(1.0, float(np.abs(e).max(initial=0.0)))
        if not np.allclose(g, e, rtol=0.0, atol=1e-4 * scale):
            return f"max difference {float(np.abs(g - e).max()):.3g}"
    return ""


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
        raise missing_packages_error(exc.name) from None
    return onnxruntime, tf2onnx


def converted(fn: Callable, input_signature: Sequence[tf.TensorSpec], name: str, variables: Sequence) -> Path:
    """The cached ONNX file of ``fn`` with ``variables`` (the weights it reads), converted now if absent."""
    ort, tf2onnx = _onnx_modules()
    digest = weights_digest(variables)
    path = onnx_dir() / f"{name}-{digest[:20]}-tf2onnx{converter_version()}-opset{OPSET}-v{CACHE_FORMAT}.onnx"
    if not path.is_file():
        _convert(path, ort, tf2onnx, fn, input_signature)
    return path


def _convert(path: Path, ort, tf2onnx, fn, input_signature) -> None:
    """Convert, check the result against TF on a probe input, and only then publish it at ``path``.

    Why the check: tf2onnx 1.17 does not always give the same graph for the same function (it
    first runs TF's grappler, whose passes are time-limited).  On this project's loaded 2-core
    machine, 2 of about 10 conversions of GIPC-GAN-compact came out with a Squeeze missing (output
    (1, N, H, W, 1)); the cause is not pinned down.  That one shape fault is repaired in place
    (:func:`_squeeze_extra_axes`) and the graph checked again; a conversion that still disagrees
    with TF is retried, and none is ever cached.
    """
    from fusion_tf.core.imageio import atomic_path

    # named specs go to the converter only: a tf.function that already has a signature refuses them
    specs = [tf.TensorSpec(s.shape, s.dtype, name=f"input_{i}") for i, s in enumerate(input_signature)]
    probe = _probe_inputs(input_signature)
    expected = [np.asarray(t) for t in tf.nest.flatten(fn(*[tf.constant(x) for x in probe]))]
    problem = ""
    for _ in range(CONVERSION_ATTEMPTS):
        try:
            with atomic_path(path) as tmp:
                tf2onnx.convert.from_function(tf.function(fn), input_signature=specs, opset=OPSET,
                                              output_path=str(tmp))
                got = _run_probe(ort, tmp, probe)
                problem = _disagreement(got, expected)
                if problem and _squeeze_extra_axes(tmp, got, expected):  # then checked like any graph
                    got = _run_probe(ort, tmp, probe)
                    problem = _disagreement(got, expected)
                if problem:
                    raise _Mismatch(problem)
            return
        except _Mismatch:
            continue
        except Exception as exc:  # whatever the converter trips on, the user gets one line
            raise BackendError(f"tf2onnx could not convert {path.name}: {exc}") from None
    raise BackendError(f"tf2onnx converted {path.name} {CONVERSION_ATTEMPTS} times and the result "
                       f"disagreed with TF each time ({problem}); use the TF backend")


def _run_probe(ort, path: Path, probe: Sequence[np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), probe)})


def _squeeze_extra_axes(path: Path, got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> bool:
    """Repair the converter's intermittent missing Squeeze in place: an output whose shape is the
    expected one behind extra leading axes of size 1 (seen as (1, N, H, W, 1) for (N, H, W, 1), under
    load, in 3 conversions of one CI run) gets a Squeeze appended.  True when the graph changed; the
    caller checks the repaired graph against TF again, so a repair can never pass off wrong values."""
    import onnx
    from onnx import helper, numpy_helper

    if len(got) != len(expected):
        return False
    model = onnx.load(str(path))
    changed = False
    for out, g, e in zip(model.graph.output, got, expected):
        extra = g.ndim - e.ndim
        if extra <= 0 or g.shape != (1,) * extra + e.shape:
            continue
        inner = f"{out.name}__before_squeeze"
        for node in model.graph.node:
            node.output[:] = [inner if n == out.name else n for n in node.output]
            node.input[:] = [inner if n == out.name else n for n in node.input]
        for info in model.graph.value_info:
            if info.name == out.name:
                info.name = inner
        axes = numpy_helper.from_array(np.arange(extra, dtype=np.int64), f"{out.name}__squeeze_axes")
        model.graph.initializer.append(axes)
        model.graph.node.append(helper.make_node("Squeeze", [inner, axes.name], [out.name]))
        dims = out.type.tensor_type.shape.dim
        if len(dims) == g.ndim:
            del dims[:extra]
        changed = True
    if changed:
        onnx.save(model, str(path))
    return changed


def network(fn: Callable, input_signature: Sequence[tf.TensorSpec], *, name: str, variables: Sequence,
            backend: str | None = None, jit_compile: bool = False) -> Callable:
    """The callable a fuser runs its network through.

    ``backend`` None or ``"tf"``: ``tf.function`` with ``input_signature`` (dynamic shapes, one trace;
    ``jit_compile`` for XLA).  ``"onnxruntime"``: an :class:`OnnxNetwork` of :func:`converted`, cached
    under ``name`` and a digest of ``variables`` (the weights ``fn`` reads); a cached file onnxruntime
    cannot load is converted again.  Outputs: tensors (TF) or arrays (ONNX); ``np.asarray`` takes both.
    """
    if backend in (None, "tf"):
        return tf.function(fn, input_signature=input_signature, jit_compile=jit_compile)
    if backend != "onnxruntime":
        raise BackendError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if jit_compile:
        raise BackendError("--jit XLA-compiles the TF backend; it does not apply to --backend onnxruntime")
    def convert():
        return converted(fn, input_signature, name, variables)

    return load_or_discard(convert()) or OnnxNetwork(convert())
