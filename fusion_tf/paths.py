"""Locations of the data this project ships next to the package (no TensorFlow import here)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: weights trained by this project, one folder per model, each with its recipe
SHIPPED_DIR = REPO_ROOT / "checkpoints"
#: the bundled sample pairs of the README quick start
SAMPLES_DIR = REPO_ROOT / "datasets" / "samples"
