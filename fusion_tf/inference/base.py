"""What every model's inference front end returns, so the CLI, evaluation and export treat them alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


@dataclass
class FusionResult:
    """Result of fusing one group of source images.

    fused         uint8, H×W (grey sources) or H×W×3 (colour sources).
    raw           float32 — the network's own output for the (last) pair, before any de-normalisation,
                  stretching or rounding (what ``--save-raw`` writes): MFF-GAN's tanh-range image,
                  GACN's rectified decision map, MFIF-GAN's focus map.
    decision_map  float32 H×W in [0, 1] for decision-map models (what ``--save-map`` writes), else None.
    """

    fused: np.ndarray
    raw: np.ndarray | None = None
    decision_map: np.ndarray | None = None


class Fuser(Protocol):
    """A loaded model ready to fuse groups of uint8 source images of one size (≥ 2, in order)."""

    name: str

    def fuse(self, images: Sequence[np.ndarray], **options) -> FusionResult: ...
