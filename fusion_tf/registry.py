"""Model name → where its networks, fuser, data preparation and trainer live.

Entries name modules as strings and import them on first use, so ``fusion-tf models`` or a metrics
run does not pay for importing every model (and a model under construction cannot break the others).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fusion_tf.errors import FusionError
from fusion_tf.paths import SHIPPED_DIR


@dataclass(frozen=True)
class ModelEntry:
    name: str
    title: str
    networks: str  # "module:function" returning {"generator": model, "discriminator": model, ...}
    fuser: str  # "module:Class(network, **options) -> Fuser"
    inference_network: str  # "module:function(WeightsSource) -> unloaded inference network"
    default_weights: Path | None = None
    checkpoint_key: str = "generator"  # the network's key in training checkpoints and <key>.weights.h5 of runs
    importers: dict = field(default_factory=dict)  # foreign format → "module:function(network, path)"
    prepare: str | None = None  # module with add_prepare_arguments(parser) and prepare(args)
    train: str | None = None  # module with add_train_arguments(parser) and train(args)
    fuser_options: tuple[str, ...] = ()  # keyword options its fuser understands (CLI flags)
    decision_map: bool = False  # whether --save-map makes sense
    weights_help: str = ""
    extra: dict = field(default_factory=dict)


#: the model `fuse`, `export` and the Python API use when none is named
DEFAULT_MODEL = "mffgan"


def _resolve(target: str) -> Callable:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


MODELS: dict[str, ModelEntry] = {
    "mffgan": ModelEntry(
        name="mffgan",
        title="MFF-GAN (Zhang et al., Inf. Fusion 2021) — unsupervised GAN, Y-channel fusion",
        networks="fusion_tf.models.mffgan:build_networks",
        fuser="fusion_tf.inference.mffgan:MFFGANFuser",
        inference_network="fusion_tf.inference.mffgan:build_network",
        default_weights=SHIPPED_DIR / "mffgan" / "generator.weights.h5",
        importers={"tf1": "fusion_tf.weights.tf1:load_tf1_generator"},
        prepare="fusion_tf.data.mffgan",
        train="fusion_tf.training.mffgan",
        fuser_options=("output_mode", "jit_compile", "tile", "backend"),
        weights_help="original TF1 checkpoint prefix (…/CGAN.model-19), NAME.weights.h5, a run folder "
                     "or a training checkpoint",
    ),
    "gipcgan": ModelEntry(
        name="gipcgan",
        title="GIPC-GAN (Li et al., CIS 2023) — supervised GAN, Y-channel fusion; Tables 1–2 (paper only)",
        networks="fusion_tf.models.gipcgan:build_networks",
        fuser="fusion_tf.inference.gipcgan:GIPCGANFuser",
        inference_network="fusion_tf.inference.gipcgan:build_network",
        default_weights=SHIPPED_DIR / "gipcgan" / "generator.weights.h5",
        prepare="fusion_tf.data.gipcgan",
        train="fusion_tf.training.gipcgan",
        fuser_options=("jit_compile", "tile", "backend"),
        weights_help="NAME.weights.h5, a run folder of 'fusion-tf train gipcgan' or a training checkpoint",
    ),
    "gipcgan-compact": ModelEntry(
        name="gipcgan-compact",
        title="GIPC-GAN, count_matched variant — reproduces the paper's Table 4 parameter counts",
        networks="fusion_tf.models.gipcgan:build_networks_compact",
        fuser="fusion_tf.inference.gipcgan:GIPCGANFuser",
        inference_network="fusion_tf.inference.gipcgan:build_network_compact",
        default_weights=SHIPPED_DIR / "gipcgan-compact" / "generator.weights.h5",
        prepare="fusion_tf.data.gipcgan",
        train="fusion_tf.training.gipcgan",
        fuser_options=("jit_compile", "tile", "backend"),
        weights_help="NAME.weights.h5, a run folder of 'fusion-tf train gipcgan-compact' or a training checkpoint",
    ),
    "mfifgan": ModelEntry(
        name="mfifgan",
        title="MFIF-GAN (Wang et al., SP:IC 2021) — WGAN-GP focus-map generator, SRR, RGB pixel selection",
        networks="fusion_tf.models.mfifgan:build_networks",
        fuser="fusion_tf.inference.mfifgan:MFIFGANFuser",
        inference_network="fusion_tf.inference.mfifgan:build_network",
        default_weights=SHIPPED_DIR / "mfifgan" / "generator.weights.h5",  # none released: ours
        importers={"npz": "fusion_tf.weights.mfifgan_npz:load_generator_npz"},
        prepare="fusion_tf.data.mfifgan",
        train="fusion_tf.training.mfifgan",
        fuser_options=("output_mode", "jit_compile", "tile", "backend"),
        decision_map=True,
        weights_help="PyTorch state dict as .npz with the original key names (G.npz), NAME.weights.h5, "
                     "a run folder or a training checkpoint",
    ),
    "gacn": ModelEntry(
        name="gacn",
        title="GACN (Ma et al., Neurocomputing 2022) — decision map + boundary guided filter",
        networks="fusion_tf.models.gacn:build_networks",
        fuser="fusion_tf.inference.gacn:GACNFuser",
        inference_network="fusion_tf.inference.gacn:build_network",
        default_weights=SHIPPED_DIR / "gacn" / "gacn.weights.h5",
        checkpoint_key="gacn",
        importers={"npz": "fusion_tf.weights.torch_npz:load_gacn_npz"},
        prepare="fusion_tf.data.gacn",
        train="fusion_tf.training.gacn",
        fuser_options=("multi", "tile", "tile_cache", "backend"),
        decision_map=True,
        weights_help="the released PyTorch weights as npz (GACN_state_dict_pytorch_layout.npz), "
                     "NAME.weights.h5, a run folder or a training checkpoint",
    ),
}


def get(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except KeyError:
        raise FusionError(f"unknown model {name!r}; available: {', '.join(MODELS)}") from None


def available_models() -> list[str]:
    """Models whose shipped default weights are present (usable with no ``--weights``)."""
    return [n for n, e in MODELS.items() if e.default_weights is not None and e.default_weights.is_file()]


def build_networks(name: str) -> dict:
    return _resolve(get(name).networks)()


def check_options(name: str, **options) -> dict:
    """The options ``name``'s fuser understands, ``None`` values dropped; others are a one-line error.

    Cheap (no TensorFlow), so the CLI validates before any model loads.
    """
    entry = get(name)
    unsupported = sorted(k for k, v in options.items() if v is not None and k not in entry.fuser_options)
    if unsupported:
        flags = ", ".join("--" + k.replace("_", "-") for k in unsupported)
        raise FusionError(f"model {name} does not take {flags}")
    return {k: v for k, v in options.items() if v is not None}


def load_fuser(name: str, weights=None, **options):
    """The model's fuser with ``weights`` loaded (None: the shipped default; see
    :mod:`fusion_tf.weights.resolve` for every accepted format).  ``name`` may be a preset name
    (``load_fuser("gacn-original")``: that preset's model and weights).

    ``backend="onnxruntime"``: when these weights' graphs were converted before, the fuser runs them
    straight from the ONNX cache index, without importing TensorFlow (:mod:`fusion_tf.inference.onnx_cache`);
    otherwise the TF route loads the model, converts, and records the index entry for next time.
    """
    from fusion_tf.weights.resolve import load_network, model_and_weights, resolve

    name, weights = model_and_weights(name, weights)
    options = check_options(name, **options)
    source = resolve(name, weights)
    fuser_class = _resolve(get(name).fuser)
    index = _onnx_index(name, source, fuser_class, options)
    fuser = _cached_fuser(index, fuser_class, options) if index is not None else None
    if fuser is None:
        network, source = load_network(name, source)
        fuser = fuser_class(network, **options)
        entry = fuser.onnx_cache_entry() if index is not None else None
        if entry is not None:
            index.record(**entry)
    fuser.weights_source = source
    return fuser


def _onnx_index(name: str, source, fuser_class, options: dict):
    """The ONNX cache index entry for this load, or None when the fuser does not use one (TF backend,
    a fuser whose ONNX path keeps TF such as GACN's, weights that are not one file)."""
    if options.get("backend") != "onnxruntime" or options.get("jit_compile") or \
            not hasattr(fuser_class, "cached_network"):
        return None  # (--jit with onnxruntime: the TF route gives the one-line error)
    from fusion_tf.inference.onnx_cache import Index

    return Index.for_weights(name, source.path, {"kind": source.kind, **fuser_class.onnx_cache_context(source)})


def _cached_fuser(index, fuser_class, options: dict):
    """A fuser around the indexed ONNX graphs, or None (not converted yet, or a damaged entry)."""
    from fusion_tf.inference.onnx_cache import warn

    entry = index.lookup()
    sessions = index.sessions(entry) if entry is not None else None
    if sessions is None:
        return None
    try:
        network = fuser_class.cached_network(sessions, entry)
    except (KeyError, TypeError, ValueError) as exc:
        warn(f"{index.path}: damaged ONNX cache entry ({type(exc).__name__}: {exc}); converting again")
        return None
    return fuser_class(network, **options)


def parameter_counts(name: str) -> list[tuple[str, int, int]]:
    """(network, trainable, non-trainable) for each network of a model."""
    rows = []
    for net_name, model in build_networks(name).items():
        trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
        frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
        rows.append((net_name, trainable, frozen))
    return rows
