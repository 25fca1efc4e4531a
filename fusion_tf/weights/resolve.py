"""The one place that turns "model + optional weights path" into a loaded inference network.

Every entry point — ``fuse``, ``evaluate``, ``export``, the report, the Python API — goes through
:func:`load_network`, so a model cannot silently run with random weights because one of them forgot
the shipped default (the bug that motivated this module: GACN's fuser ignored its default).

Formats (recognised from the path, not from the model):

=============  =====================================================================================
``shipped``    no path given: the model's shipped preset (``checkpoints/<model>/…``); refused when none
``preset``     a preset name (:mod:`fusion_tf.presets`) that is not an existing path: its file
``keras``      ``NAME.weights.h5`` / ``.keras`` — this project's inference weights
``run``        a training run folder: its ``<network>.weights.h5``, else its newest checkpoint
``checkpoint`` a training checkpoint prefix (``RUN/checkpoints/ckpt-1380``, object-based)
``tf1``        an original TF1 name-based checkpoint prefix (MFF-GAN's ``CGAN.model-19``)
``npz``        an original PyTorch state dict exported as ``.npz`` with the original key names
=============  =====================================================================================

The own formats (keras, run, checkpoint) fit every model; foreign ones only the models whose registry
entry names an importer for them.  A preset resolves to its ``.weights.h5`` (kind ``keras``) with
``WeightsSource.preset`` set; a preset of another model, or an original's preset not yet imported with
``fusion-tf import-weights``, is one line saying what to do.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from fusion_tf.errors import WeightsError

OWN_KINDS = ("keras", "run", "checkpoint")
KIND_NAMES = {"keras": "a Keras .weights.h5", "run": "a training run folder", "checkpoint": "a training checkpoint",
              "tf1": "an original TF1 checkpoint", "npz": "a PyTorch state dict (.npz)"}


@dataclass(frozen=True)
class WeightsSource:
    """A weights location whose format is known; ``shipped`` marks the registry's default."""

    path: Path
    kind: str
    shipped: bool = False
    preset: str | None = None  # the preset name the weights came from (fusion_tf.presets)

    def __str__(self) -> str:
        return str(self.path)


def identify(path: str | os.PathLike) -> str:
    """The format of ``path`` (see the module table); one-line :class:`WeightsError` if none fits."""
    path = Path(path)
    if path.is_dir():
        return "run"
    name = path.name
    if name.endswith(".npz"):
        kind = "npz"
    elif name.endswith(".h5") or name.endswith(".keras"):
        kind = "keras"
    elif Path(f"{path}.index").is_file():
        from fusion_tf.weights.tf1 import is_tf1_checkpoint  # imports TF: only for checkpoint prefixes

        return "tf1" if is_tf1_checkpoint(path) else "checkpoint"
    elif path.exists():
        raise WeightsError(f"{path}: unknown weights format (expected a .weights.h5 file, a run folder, a "
                           "checkpoint prefix such as RUN/checkpoints/ckpt-100, or a PyTorch .npz)")
    else:
        raise WeightsError(f"weights not found: {path}")
    if not path.is_file():
        raise WeightsError(f"weights not found: {path}")
    return kind


def resolve(model: str, weights: str | os.PathLike | None = None) -> WeightsSource:
    """Where ``model``'s weights come from: ``weights`` (a path or a preset name) if given, else its
    shipped preset."""
    from fusion_tf import presets, registry

    entry = registry.get(model)
    if weights is None:
        default = presets.default_for(model)
        if entry.default_weights is None or not entry.default_weights.is_file():
            raise WeightsError(f"{model} has no shipped weights: pass --weights ({entry.weights_help})")
        return WeightsSource(entry.default_weights, "keras", shipped=True, preset=default and default.name)
    preset = _preset_named(weights)
    if preset is not None:
        if preset.model != model:
            raise WeightsError(f"preset {preset.name} holds {preset.model} weights, not {model}: "
                               f"use --model {preset.model}")
        if preset.origin == "shipped":
            return resolve(model, None)
        return WeightsSource(presets.check_imported(preset), "keras", preset=preset.name)
    if not Path(weights).exists() and not Path(f"{weights}.index").is_file() and _bare_name(weights):
        raise WeightsError(f"weights not found: {weights} (no such file, and no preset of that name; "
                           f"presets: {', '.join(presets.all_presets())})")
    kind = identify(weights)
    if kind not in OWN_KINDS and kind not in entry.importers:
        raise WeightsError(f"{weights} is {KIND_NAMES[kind]}, which {model} cannot load "
                           f"(it takes: {entry.weights_help})")
    return WeightsSource(Path(weights), kind)


def _preset_named(weights):
    """The :class:`~fusion_tf.presets.Preset` ``weights`` names, if it is a bare name that is not an
    existing path; else None."""
    from fusion_tf import presets

    text = str(weights)
    if not _bare_name(text) or Path(text).exists() or Path(f"{text}.index").is_file():
        return None
    return presets.find(text)


def _bare_name(weights) -> bool:
    """A word without a folder or a weights suffix: what a preset name looks like."""
    text = str(weights)
    return not (os.sep in text or "/" in text or text.endswith((".h5", ".keras", ".npz")))


def model_and_weights(model: str, weights=None) -> tuple[str, object]:
    """``load_fuser("gacn-original")``: a preset name given as the model → ``(its model, the preset)``."""
    from fusion_tf import presets, registry

    if model not in registry.MODELS and weights is None and (preset := presets.find(str(model))) is not None:
        return preset.model, preset.name
    return model, weights


def _call(target: str, *args):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)(*args)


def load_into(model: str, network, source: WeightsSource) -> None:
    """Load ``source`` into the built ``network`` of ``model`` (one readable line on a mismatch)."""
    from fusion_tf import registry
    from fusion_tf.weights import own

    entry = registry.get(model)
    if source.kind in entry.importers:
        _call(entry.importers[source.kind], network, source.path)
    elif source.kind == "keras":
        own.load_keras_weights(network, source.path, label=model)
    else:
        own.load_own_weights(network, source.path, key=entry.checkpoint_key, weights_name=entry.checkpoint_key,
                             label=model)


def load_weights(model: str, network, weights: str | os.PathLike | None = None):
    """Load ``weights`` (any accepted format; None: shipped) into an already built ``network``; returns it."""
    load_into(model, network, resolve(model, weights))
    return network


def load_network(model: str, weights: str | os.PathLike | WeightsSource | None = None):
    """``(network, source)``: the model's inference network, built and loaded from ``weights``.

    The network is built by the registry's ``inference_network`` function, which receives the source
    (GIPC-GAN reads the variant and exchange rule from the run's ``recipe.json`` beside it).
    """
    from fusion_tf import registry

    source = weights if isinstance(weights, WeightsSource) else resolve(model, weights)
    network = _call(registry.get(model).inference_network, source)
    load_into(model, network, source)
    return network, source
