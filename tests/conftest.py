"""Shared test fixtures.

Faithfulness tests read the originals' weights and outputs from ``../shared`` (never copied into the
project).  When that folder is missing they FAIL — a skipped faithfulness test would let CI pass
without proving anything.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # same numerics as the package default

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference data folder {SHARED} is missing: faithfulness tests cannot run")
    return SHARED


@pytest.fixture(scope="session")
def mffgan_ref(shared) -> Path:
    return shared / "reference" / "mff_gan"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
