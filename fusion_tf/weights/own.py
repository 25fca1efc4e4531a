"""Loading this project's own weights: ``.weights.h5`` files, run folders and training checkpoints.

A model's ``--weights`` may name any of

* ``NAME.weights.h5``            Keras weights of the inference network (what ``checkpoints/`` ships);
* a training run folder          its ``<network>.weights.h5`` (written at every checkpoint) or else
                                 the newest checkpoint in ``<run>/checkpoints``;
* a training checkpoint prefix   ``<run>/checkpoints/ckpt-1380`` (object-based ``tf.train.Checkpoint``).

Which of these (or a foreign format) a path is, and which model it goes into, is decided in one place:
:mod:`fusion_tf.weights.resolve`.  A mismatch between file and model is a :class:`WeightsError`.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import tensorflow as tf

from fusion_tf.errors import WeightsError


def load_keras_weights(model, path: str | os.PathLike, label: str | None = None) -> None:
    """``model.load_weights`` with the error turned into one readable line.

    ``label`` names the model as the user knows it (``gacn``), not the internal Keras network name.
    """
    path = Path(path)
    label = label or model.name
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with warnings.catch_warnings():  # Keras warns per skipped container before it raises on a mismatch
            warnings.simplefilter("ignore", UserWarning)
            model.load_weights(str(path))
    except Exception as exc:  # Keras raises ValueError/KeyError/OSError depending on the mismatch
        text = str(exc).strip()
        counted = re.search(r"(\d+) objects could not be loaded", text)
        why = (f"{counted.group(1)} of its layers do not match" if counted
               else (text.splitlines()[0].rstrip(":") if text else type(exc).__name__))
        raise WeightsError(f"{path} does not hold {label} weights ({why}; saved by another model?)") from None


def restore_from_checkpoint(model, key: str, prefix: str | os.PathLike, label: str | None = None) -> None:
    """Restore only ``model`` (saved under ``key`` by the training loop) from a training checkpoint."""
    ckpt = tf.train.Checkpoint(**{key: model})
    try:
        status = ckpt.restore(str(prefix))
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as exc:
        first = str(exc).strip().splitlines()[0].rstrip(":") if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{prefix}: not a checkpoint of {label or 'this model'} ({first})") from None


def load_own_weights(model, path: str | os.PathLike, key: str, weights_name: str, label: str | None = None) -> str:
    """Load ``model`` from a ``.weights.h5``, run folder or checkpoint prefix; returns what was used."""
    path = Path(path)
    if path.is_dir():
        h5 = path / f"{weights_name}.weights.h5"
        if h5.is_file():
            load_keras_weights(model, h5, label)
            return str(h5)
        latest = tf.train.latest_checkpoint(str(path / "checkpoints")) or tf.train.latest_checkpoint(str(path))
        if latest is None:
            raise WeightsError(f"{path}: no {h5.name} and no training checkpoint inside")
        restore_from_checkpoint(model, key, latest, label)
        return latest
    if path.name.endswith(".h5") or path.name.endswith(".keras"):
        load_keras_weights(model, path, label)
        return str(path)
    if Path(str(path) + ".index").is_file():
        restore_from_checkpoint(model, key, path, label)
        return str(path)
    raise WeightsError(f"weights not found: {path}")
