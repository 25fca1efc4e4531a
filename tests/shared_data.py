"""Where the faithfulness tests find ``../shared`` (the originals' weights, outputs and data sets).

Without it (a fresh clone on its own), those tests are skipped with one summary line instead of
erroring by the hundred; with ``FUSION_TF_REQUIRE_SHARED=1`` (set by ``.ci/run``) a missing file is a
failure, so CI cannot go green without proving faithfulness.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
#: prefix of every skip reason, counted by conftest's summary line
SKIP_REASON = "reference data not found"


def required() -> bool:
    return os.environ.get("FUSION_TF_REQUIRE_SHARED", "") not in ("", "0")


def need(path: Path | None = None) -> Path:
    """``path`` (default: the shared folder) if it exists; otherwise skip, or fail when required."""
    path = SHARED if path is None else Path(path)
    if not path.exists():
        message = f"{SKIP_REASON}: {path}"
        if required():
            pytest.fail(message + " (FUSION_TF_REQUIRE_SHARED=1)")
        pytest.skip(message)
    return path
