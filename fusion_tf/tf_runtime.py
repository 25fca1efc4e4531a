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
* **Lean start-up** (``configure(lean=True)``, the command line only).  Importing TensorFlow imports
  Keras, and Keras imports matplotlib.pyplot, OpenCV and IPython for its plotting and notebook helpers
  (``keras.visualization``, ``KerasFileEditor``) — about 1.5 of the ~7 s ``import tensorflow`` takes
  on this project's loaded 2-core machine (``benchmarks/bench_startup.py``).  Keras imports them
  optionally, so while the first import of TensorFlow or Keras runs they are made to look absent,
  and are importable as usual right after.  Those Keras helpers then report matplotlib/OpenCV
  missing in that process; ``fusion-tf`` never calls them.  A library user's process is left alone.

A value the user exported always wins.  If TensorFlow was imported before ``fusion_tf``, none of
this can take effect; nothing breaks.  Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
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
#: modules Keras imports only optionally, for helpers ``fusion-tf`` never calls (see "Lean start-up")
KERAS_OPTIONAL = ("matplotlib", "cv2", "IPython")


def configure(verbose: bool = False, lean: bool = False) -> None:
    """Apply the switches (idempotent).  ``verbose``: TF logs as it would by itself; ``lean``: skip
    Keras's optional imports while TensorFlow loads (for the command line's own process)."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    quiet = not verbose and not USER_SET_LOG_LEVEL
    if not USER_SET_LOG_LEVEL:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"
    _remove_hook()
    if (quiet or lean) and "tensorflow" not in sys.modules and "keras" not in sys.modules:
        sys.meta_path.insert(0, _FirstImport(quiet=quiet, lean=lean))


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _FirstImport)]


class _AlreadyLoaded(importlib.abc.Loader):
    """Hands the import machinery the module :class:`_FirstImport` has just imported."""

    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        pass


class _FirstImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` (or ``keras``, which imports it) with fd 2 captured and
    TF's C++ log lines filtered out (``quiet``), and Keras's optional imports made absent (``lean``)."""

    def __init__(self, quiet: bool, lean: bool):
        self.quiet, self.lean = quiet, lean

    def find_spec(self, name, path=None, target=None):
        if name not in ("tensorflow", "keras"):
            return None
        _remove_hook()  # once only, and the nested import below must take the normal route
        with contextlib.ExitStack() as stack:
            if self.quiet:
                stack.enter_context(_FilteredStderr())
            if self.lean:
                stack.enter_context(_absent(KERAS_OPTIONAL))
            module = importlib.import_module(name)
        return importlib.util.spec_from_loader(name, _AlreadyLoaded(module), origin=getattr(module, "__file__", None))


@contextlib.contextmanager
def _absent(names):
    """``import <name>`` raises ImportError inside the block (for those not imported yet)."""
    blocked = [n for n in names if n not in sys.modules]
    for n in blocked:
        sys.modules[n] = None
    try:
        yield
    finally:
        for n in blocked:
            if sys.modules.get(n, 0) is None:
                del sys.modules[n]


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
