"""The TensorFlow-free half of ``--backend onnxruntime``: running cached ONNX graphs, and finding them.

Converting a network (:mod:`fusion_tf.inference.backends`) needs TensorFlow, tf2onnx and the loaded
model: 4–8 s of start-up before the first pixel on this project's loaded 2-core machine.  Running the converted graph needs none of them, so a
``fuse`` process that finds its graphs already converted should not pay for them.  The graphs' file
names carry a digest of the loaded *variables* (known only after TF has loaded the model), so this
module keeps an **index** keyed by what is known before TF starts:

* the model name and the sha256 of the weights **file**, hashed on every run (the luma models'
  weights are 0.2–0.7 MB: under a millisecond; weights that are not one file — a run folder, a
  checkpoint prefix — are not indexed and always take the TF route);
* ``context``: anything else the model reads to build its graph (GIPC-GAN: the run's recipe);
* the converter version (read from the installed package's metadata: importing tf2onnx imports TF),
  :data:`OPSET` and :data:`CACHE_FORMAT`.

The first run (no entry) goes the TF route, converts and checks each graph against TF, then
:meth:`Index.record` writes the entry atomically: the graphs' file names plus whatever the fuser
needs to run them (e.g. the receptive-field halo for ``--tile``).  Later runs :meth:`Index.lookup`
the entry and build the fuser around :class:`OnnxNetwork` sessions.  A damaged entry, a missing or
unloadable graph is one warning line and the TF route converts again; an entry for other weights is
never found, because the weights' digest is part of its file name.

Layout under ``$FUSION_TF_CACHE`` (default ``~/.cache/fusion_tf``)::

    onnx/<name>-<variables digest>-tf2onnx<v>-opset<N>-v<format>.onnx   graphs (backends.py)
    onnx/index/<model>-<key digest>.json                                this index
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from fusion_tf.errors import FusionError
from fusion_tf.paths import file_sha256

#: ONNX opset the conversion targets (onnxruntime ≥ 1.14 runs it)
OPSET = 17
#: bump when the conversion recipe or an index entry's layout changes: old graphs and entries are then not reused
CACHE_FORMAT = 2


class BackendError(FusionError):
    """The requested backend cannot run here (missing packages, failed conversion)."""


class UnloadableGraph(BackendError):
    """onnxruntime cannot load a cached graph (a file damaged outside this program)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: onnxruntime cannot load it ({reason}); delete it to convert again")
        self.path, self.reason = path, reason


def cache_dir() -> Path:
    return Path(os.environ.get("FUSION_TF_CACHE") or Path.home() / ".cache" / "fusion_tf")


def onnx_dir() -> Path:
    return cache_dir() / "onnx"


def converter_version() -> str | None:
    """The installed tf2onnx's version, without importing it (it imports TensorFlow); None if absent."""
    from importlib import metadata

    try:
        return metadata.version("tf2onnx")
    except metadata.PackageNotFoundError:
        return None


def missing_packages_error(name: str) -> BackendError:
    return BackendError(f"--backend onnxruntime needs the optional packages onnxruntime and tf2onnx "
                        f"(pip install 'fusion_tf[onnx]'); {name} is not installed")


def onnxruntime_module():
    try:
        import onnxruntime
    except ImportError:
        raise missing_packages_error("onnxruntime") from None
    return onnxruntime


def warn(message: str) -> None:
    """One line on stderr: the cache repairs itself, the user only needs to know why this run is slower."""
    print(f"warning: {message}", file=sys.stderr)


class OnnxNetwork:
    """One converted graph run by onnxruntime on the CPU provider; call it like the TF network it
    replaces (arrays in, one array or a tuple of arrays out)."""

    def __init__(self, path: str | os.PathLike):
        ort = onnxruntime_module()
        self.path = Path(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # no per-node placement warnings
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # e.g. a file damaged outside this program: say which one
            raise UnloadableGraph(self.path, str(exc)) from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs):
        feed = {n: np.ascontiguousarray(np.asarray(x, np.float32)) for n, x in zip(self.input_names, inputs)}
        outputs = self.session.run(None, feed)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


class Index:
    """The index entry for one (model, weights file, context) under the installed converter."""

    def __init__(self, model: str, key: dict):
        self.model, self.key = model, key
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        self.path = onnx_dir() / "index" / f"{model}-{digest[:24]}.json"

    @classmethod
    def for_weights(cls, model: str, weights: str | os.PathLike, context: dict | None = None) -> Index | None:
        """The entry's key, or None when it cannot be keyed before TF starts (weights not one file,
        tf2onnx not installed: the TF route then says what is missing)."""
        path = Path(weights)
        version = converter_version()
        if version is None or not path.is_file():
            return None
        return cls(model, {"model": model, "weights_sha256": file_sha256(path), "context": context or {},
                           "tf2onnx": version, "opset": OPSET, "format": CACHE_FORMAT})

    def lookup(self) -> dict | None:
        """The recorded entry with its graphs' paths resolved, or None (not converted yet, or unusable:
        then one warning line says why and the caller converts again)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            warn(f"{self.path}: unreadable ONNX cache entry ({exc.strerror or exc}); converting again")
            return None
        try:
            entry = json.loads(text)
            if entry["key"] != self.key or not isinstance(entry["graphs"], dict) or not entry["graphs"]:
                raise ValueError("it does not describe these weights")
            graphs = {role: onnx_dir() / Path(str(name)).name for role, name in entry["graphs"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            warn(f"{self.path}: damaged ONNX cache entry ({exc}); converting again")
            return None
        missing = [str(p) for p in graphs.values() if not p.is_file()]
        if missing:
            warn(f"{missing[0]}: converted graph missing from the ONNX cache; converting again")
            return None
        return {**entry, "graphs": graphs}

    def record(self, graphs: dict[str, Path], **details) -> None:
        """Write the entry atomically (a concurrent run writing the same entry is harmless)."""
        from fusion_tf.core.imageio import atomic_path

        entry = {"key": self.key, "graphs": {role: Path(p).name for role, p in graphs.items()}, **details}
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")

    def sessions(self, entry: dict) -> dict[str, OnnxNetwork] | None:
        """An :class:`OnnxNetwork` per graph of ``entry``; None when one cannot be loaded (see
        :func:`load_or_discard`): the TF route then converts it again."""
        sessions = {}
        for role, path in entry["graphs"].items():
            sessions[role] = load_or_discard(path)
            if sessions[role] is None:
                return None
        return sessions


def load_or_discard(path: Path) -> OnnxNetwork | None:
    """The cached graph at ``path``, or None after one warning line when onnxruntime cannot load it
    (damaged outside this program: files are only ever published whole); the file is removed, so
    that the caller's conversion replaces it."""
    onnxruntime_module()  # a missing package is the one-line error it always was, not a cache problem
    try:
        return OnnxNetwork(path)
    except UnloadableGraph as exc:
        warn(f"{path}: onnxruntime cannot load this cached graph ({exc.reason.splitlines()[0][:200]}); "
             "converting it again")
        Path(path).unlink(missing_ok=True)
        return None
