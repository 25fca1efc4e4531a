"""GIPC-GAN inference: Y-channel fusion of pairs and serial stacks, grey and colour.

The paper: RGB → YCbCr, Y fused by the network, Cb/Cr "in a traditional way", back to RGB; more
than two images serially (its Figs. 14–15).  The colour path is MFF-GAN's (same lab, inferred):
:class:`~fusion_tf.inference.luma.LumaFuser`.  BN runs in inference mode; output
``round(clip(y·127.5 + 127.5))``, no byte-scaling.

No weights were published; this project ships a paper-variant checkpoint, and ``--weights`` takes a
``generator.weights.h5``, a training run folder or a checkpoint prefix (resolved by
:mod:`fusion_tf.weights.resolve`).  A run folder's ``recipe.json`` (also found beside a weights file or
a checkpoint) tells the variant and the exchange wiring — the two wirings have identical weight
shapes, so without the recipe a W1′ model would load silently into a W1 network.
"""

from __future__ import annotations

import json
from pathlib import Path

from fusion_tf.core import focus
from fusion_tf.errors import WeightsError
from fusion_tf.inference.luma import LumaFuser


def run_recipe(weights: str | Path) -> dict:
    """The ``recipe.json`` of the run ``weights`` belongs to ({} when there is none)."""
    path = Path(weights)
    for folder in (path, path.parent, path.parent.parent):
        candidate = folder / "recipe.json"
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except (OSError, ValueError) as exc:
                raise WeightsError(f"{candidate}: unreadable recipe ({exc})") from None
    return {}


def _build(source, variant: str):
    """An unloaded generator wired as the run of ``source`` was trained; the recipe must agree on
    ``variant`` (a clear message instead of a shape mismatch deep in Keras)."""
    from fusion_tf.models.gipcgan import build_generator  # TF: not needed to run cached ONNX graphs

    recipe = run_recipe(source.path)
    if recipe.get("variant", variant) != variant:
        other = "gipcgan-compact" if recipe["variant"] == "count_matched" else "gipcgan"
        raise WeightsError(f"{source} was trained as the {recipe['variant']!r} variant: use --model {other}")
    return build_generator(variant, recipe.get("exchange", "all_levels"))


def build_network(source):
    """Registry hook (``gipcgan``): the paper variant's generator for ``source``."""
    return _build(source, "paper")


def build_network_compact(source):
    """Registry hook (``gipcgan-compact``): the count-matched variant's generator for ``source``."""
    return _build(source, "count_matched")


class GIPCGANFuser(LumaFuser):
    """Fuses groups of same-size uint8 images (grey or RGB; first = near focus) with a loaded generator."""

    name = "gipcgan"
    #: depth maps: no screening map in GIPC-GAN's (supervised) loss; its gradient notion, |Laplacian|
    focus_measure = staticmethod(focus.laplacian_measure)
    focus_graph = staticmethod(focus.laplacian_graph)

    @classmethod
    def onnx_cache_context(cls, source) -> dict:
        """The recipe's variant and exchange wiring: identical weight shapes, different graphs."""
        recipe = run_recipe(source.path)
        return {"variant": recipe.get("variant"), "exchange": recipe.get("exchange")}
