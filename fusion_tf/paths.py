"""Locations of the data this project ships next to the package (no TensorFlow import here)."""

import hashlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: weights trained by this project, one folder per model, each with its recipe
SHIPPED_DIR = REPO_ROOT / "checkpoints"
#: the bundled sample pairs of the README quick start
SAMPLES_DIR = REPO_ROOT / "datasets" / "samples"


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (weights files: presets' provenance, the ONNX index)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
