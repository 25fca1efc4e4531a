"""Import of MFF-GAN's released TF1 checkpoints (``CGAN.model-19``) into the Keras models.

The TF1 variable names follow ``<scope>/<layer>/w<suffix>``; kernels are HWIO on both sides, so the
import is a pure rename (spec ``mff_gan.md`` §10).  Every checkpoint tensor must be consumed and
every model weight assigned, otherwise :class:`~fusion_tf.errors.WeightsError` — a silently partial
import would produce plausible-looking but wrong images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from fusion_tf.errors import WeightsError

GENERATOR_SCOPE = "fusion_model"
DISCRIMINATOR_SCOPE = "discriminator"


def is_tf1_checkpoint(prefix: str | os.PathLike) -> bool:
    """True when ``prefix`` names a name-based checkpoint holding MFF-GAN's TF1 variables."""
    if not Path(str(prefix) + ".index").is_file():
        return False
    try:
        names = tf.train.load_checkpoint(str(prefix)).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError):
        return False
    return f"{GENERATOR_SCOPE}/layer1/w1" in names


def _generator_names(layer_name: str) -> tuple[str, str]:
    suffix = layer_name[len("layer"):]  # "2_3_far" for "layer2_3_far"
    return (f"{GENERATOR_SCOPE}/{layer_name}/w{suffix}", f"{GENERATOR_SCOPE}/{layer_name}/b{suffix}")


def generator_mapping(generator) -> dict[str, list[str]]:
    """Keras layer name → TF1 tensor names (kernel, bias) for every conv of the generator."""
    return {layer.name: list(_generator_names(layer.name)) for layer in generator.layers}


def discriminator_mapping(discriminator) -> dict[str, list[str]]:
    """Keras layer name → TF1 tensor names, BatchNorm in Keras weight order (γ, β, mean, var)."""
    out = {}
    for k in (1, 2, 3, 4):
        scope = f"{DISCRIMINATOR_SCOPE}/layer_{k}"
        out[f"layer_{k}"] = [f"{scope}/w_{k}", f"{scope}/b_{k}"]
        if k > 1:
            out[f"layer_{k}_bn"] = [f"{scope}/BatchNorm/{v}" for v in ("gamma", "beta", "moving_mean", "moving_variance")]
    out["line_5"] = [f"{DISCRIMINATOR_SCOPE}/line_5/w_5", f"{DISCRIMINATOR_SCOPE}/line_5/b_5"]
    return out


def _assign(model, mapping: dict[str, list[str]], reader, used: set[str], prefix: str) -> None:
    available = reader.get_variable_to_shape_map()
    for layer_name, names in mapping.items():
        layer = model.get_layer(layer_name)
        values = []
        for name, weight in zip(names, layer.weights):
            if name not in available:
                raise WeightsError(f"{prefix}: tensor {name} missing (not an MFF-GAN checkpoint?)")
            value = reader.get_tensor(name)
            if tuple(value.shape) != tuple(weight.shape):
                raise WeightsError(
                    f"{prefix}: {name} has shape {tuple(value.shape)}, model expects {tuple(weight.shape)}"
                )
            values.append(np.asarray(value, dtype=np.float32))
            used.add(name)
        if len(values) != len(layer.weights):
            raise WeightsError(f"{prefix}: layer {layer_name} has {len(layer.weights)} weights, mapped {len(values)}")
        layer.set_weights(values)


def load_tf1_checkpoint(prefix: str | os.PathLike, generator, discriminator=None) -> None:
    """Load ``CGAN.model-*`` weights into built Keras models (G always, D when given).

    Checks that no tensor of the loaded scopes is left over, so a checkpoint of a different
    architecture fails loudly.
    """
    prefix = str(prefix)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        raise WeightsError(f"cannot read TF1 checkpoint {prefix}: {str(exc).splitlines()[0]}") from None
    used: set[str] = set()
    _assign(generator, generator_mapping(generator), reader, used, prefix)
    scopes = [GENERATOR_SCOPE]
    if discriminator is not None:
        _assign(discriminator, discriminator_mapping(discriminator), reader, used, prefix)
        scopes.append(DISCRIMINATOR_SCOPE)
    leftover = [n for n in reader.get_variable_to_shape_map() if n.split("/")[0] in scopes and n not in used]
    if leftover:
        raise WeightsError(f"{prefix}: {len(leftover)} tensors not consumed, e.g. {sorted(leftover)[:3]}")


def load_tf1_generator(generator, prefix: str | os.PathLike) -> None:
    """Importer hook of the weights resolver: the generator alone, (network, path) order."""
    load_tf1_checkpoint(prefix, generator)
