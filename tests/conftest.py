"""Shared test fixtures.

Faithfulness tests read the originals' weights and outputs from ``../shared`` (never copied into the
project; see :mod:`shared_data`).  Without it they are skipped and ONE line says how many did not
run — unless ``FUSION_TF_REQUIRE_SHARED=1`` (``.ci/run`` sets it), where they fail, because a skipped
faithfulness test would let CI pass without proving anything.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # same numerics as the package default

import numpy as np
import pytest

from shared_data import SHARED, SKIP_REASON, need  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared() -> Path:
    return need(SHARED)


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if SKIP_REASON in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"{SKIP_REASON} at {SHARED}: {len(skipped)} faithfulness tests not run; "
                                    "see README (Tests)", yellow=True)


@pytest.fixture(scope="session")
def mffgan_ref(shared) -> Path:
    return shared / "reference" / "mff_gan"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
