"""GIPC-GAN inference: Y-channel fusion of pairs and serial stacks, grey and colour.

The paper: RGB → YCbCr, Y fused by the network, Cb/Cr "in a traditional way", back to RGB; more
than two images serially (its Figs. 14–15).  The colour path is MFF-GAN's (same lab, inferred):
:class:`~fusion_tf.inference.luma.LumaFuser`.  BN runs in inference mode; output
``round(clip(y·127.5 + 127.5))``, no byte-scaling.

No weights were published, so ``--weights`` is required: a ``generator.weights.h5``, a training run
folder or a checkpoint prefix.  A run folder's ``recipe.json`` (also found beside a weights file or
a checkpoint) tells the variant and the exchange wiring — the two wirings have identical weight
shapes, so without the recipe a W1′ model would load silently into a W1 network.
"""

from __future__ import annotations

import json
from pathlib import Path

from fusion_tf.errors import WeightsError
from fusion_tf.inference.luma import LumaFuser
from fusion_tf.models.gipcgan import build_generator
from fusion_tf.paths import SHIPPED_DIR
from fusion_tf.weights.own import load_own_weights

DEFAULT_WEIGHTS = SHIPPED_DIR / "gipcgan" / "generator.weights.h5"
DEFAULT_WEIGHTS_COMPACT = SHIPPED_DIR / "gipcgan-compact" / "generator.weights.h5"


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


def load_generator(weights: str | Path, variant: str = "paper", exchange: str | None = None):
    """A built generator with ``weights``; the run's recipe overrides ``exchange`` and must agree
    on ``variant`` (a clear message instead of a shape mismatch deep in Keras)."""
    recipe = run_recipe(weights)
    if recipe.get("variant", variant) != variant:
        other = "gipcgan-compact" if recipe["variant"] == "count_matched" else "gipcgan"
        raise WeightsError(f"{weights} was trained as the {recipe['variant']!r} variant: use --model {other}")
    g = build_generator(variant, exchange or recipe.get("exchange", "all_levels"))
    load_own_weights(g, weights, key="generator", weights_name="generator")
    return g


class GIPCGANFuser(LumaFuser):
    """Fuses groups of same-size uint8 images (grey or RGB; first = near focus)."""

    name = "gipcgan"

    def __init__(self, weights: str | Path | None = None, variant: str = "paper", exchange: str | None = None,
                 jit_compile: bool = False, backend: str | None = None, tile: int | None = None):
        if weights is None:
            weights = DEFAULT_WEIGHTS if variant == "paper" else DEFAULT_WEIGHTS_COMPACT
        super().__init__(load_generator(weights, variant, exchange), jit_compile=jit_compile, backend=backend,
                         tile=tile)
        self.variant = variant


def load_fuser(weights: str | None = None, **options) -> GIPCGANFuser:
    return GIPCGANFuser(weights, variant="paper", **options)


def load_fuser_compact(weights: str | None = None, **options) -> GIPCGANFuser:
    return GIPCGANFuser(weights, variant="count_matched", **options)
