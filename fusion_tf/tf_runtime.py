"""Process-wide TensorFlow switches, set before TensorFlow loads (TF reads them only once).

* ``TF_ENABLE_ONEDNN_OPTS=1`` — TF 2.21 leaves oneDNN off on AMD CPUs; on, the convolutions of these
  models run 1.5–2× faster (``benchmarks/``) with results equal within float tolerance (the
  faithfulness tests run with it on and off).  Export ``TF_ENABLE_ONEDNN_OPTS=0`` to opt out.
* **Quiet start-up.**  A plain ``import tensorflow`` prints seven C++ log lines on a CPU machine (the
  absl pre-init notice and oneDNN banner twice, "could not find cuda drivers", and on the first op
  ``E0000 … failed call to cuInit``), which bury a command's one result line.  Unless the user set
  ``TF_CPP_MIN_LOG_LEVEL`` themselves (or passes ``--verbose``), the level is raised to 3 and the
  first ``import tensorflow`` runs with file descriptor 2 captured: TF's C++ log lines are dropped,
  anything else written meanwhile (a Python warning, a crash message) is passed on unchanged.

A value the user exported always wins.  If TensorFlow was imported before ``fusion_tf``, none of
this can take effect; nothing breaks.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

#: TF / absl C++ log lines: "I0000 00:00:17… port.cc:153] …", "E0000 …", and absl's pre-init notice
_TF_LOG_LINE = re.compile(rb"^([IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\]|WARNING: All log messages before absl)")

USER_SET_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL" in os.environ


def configure(verbose: bool = False) -> None:
    """Apply the switches (idempotent).  ``verbose``: TF logs as it would by itself."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if USER_SET_LOG_LEVEL:
        return
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        _remove_hook()
    else:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _QuietImport())


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietImport)]


class _AlreadyLoaded(importlib.abc.Loader):
    """Hands the import machinery the module :class:`_QuietImport` has just imported."""

    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        pass


class _QuietImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` with fd 2 captured, then filters TF's C++ log lines out."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        _remove_hook()  # once only, and the nested import below must take the normal route
        with _FilteredStderr():
            module = importlib.import_module("tensorflow")
        return importlib.util.spec_from_loader(name, _AlreadyLoaded(module), origin=getattr(module, "__file__", None))


class _FilteredStderr:
    """Redirects fd 2 into a temporary file; on exit restores it and replays non-TF-log lines."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters)
            self._saved = None
            return self
        self._file = tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        kept = [line for line in self._file.read().splitlines(keepends=True) if not _TF_LOG_LINE.match(line)]
        self._file.close()
        if kept:
            os.write(2, b"".join(kept))
