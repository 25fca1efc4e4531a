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
        fuser_options=("multi", "tile", "backend"),
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
    (``load_fuser("gacn-original")``: that preset's model and weights)."""
    from fusion_tf.weights.resolve import load_network, model_and_weights

    name, weights = model_and_weights(name, weights)
    options = check_options(name, **options)
    network, source = load_network(name, weights)
    fuser = _resolve(get(name).fuser)(network, **options)
    fuser.weights_source = source
    return fuser


def parameter_counts(name: str) -> list[tuple[str, int, int]]:
    """(network, trainable, non-trainable) for each network of a model."""
    rows = []
    for net_name, model in build_networks(name).items():
        trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
        frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
        rows.append((net_name, trainable, frozen))
    return rows
