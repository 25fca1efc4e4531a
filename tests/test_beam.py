"""``--engine beam`` / :mod:`fusion_tf.beam` on the DirectRunner: the same bytes and the same
``batch.csv`` as the in-process ``fuse --batch`` (pairs, a 3-frame stack, GACN's calibration), and a
bad file that fails only its group.

Needs apache-beam (``pip install -e ".[beam]"``).  Without it these tests are skipped — unless
``FUSION_TF_REQUIRE_BEAM=1`` (CI), where a missing Beam is an error rather than a silent skip.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared_data import SHARED, need

try:
    import apache_beam  # noqa: F401
except ImportError:
    if os.environ.get("FUSION_TF_REQUIRE_BEAM", "") not in ("", "0"):
        raise ImportError('apache_beam is not importable but FUSION_TF_REQUIRE_BEAM is set: pip install -e ".[beam]"')
    pytest.skip('apache_beam not installed (pip install -e ".[beam]"; FUSION_TF_REQUIRE_BEAM=1 turns this into a '
                "failure)", allow_module_level=True)

from fusion_tf import api, batch, beam  # noqa: E402
from fusion_tf.cli import main  # noqa: E402

PAIRS = SHARED / "data" / "lytro" / "pairs"
BOX = (120, 184, 200, 280)  # 64×80 crops: the pipeline, not the network, is under test
DIRECT = "--runner=DirectRunner --direct_num_workers=1"


def _crop(name: str, letter: str) -> np.ndarray:
    y0, y1, x0, x1 = BOX
    return np.asarray(Image.open(need(PAIRS) / f"{name}-{letter}.jpg"))[y0:y1, x0:x1]


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory) -> Path:
    """Three Lytro pairs, a sub-folder stack of three frames, and a pair whose second file is not an image."""
    folder = tmp_path_factory.mktemp("beam") / "in"
    folder.mkdir()
    for name in ("lytro-01", "lytro-05", "lytro-12"):
        for s in "AB":
            Image.fromarray(_crop(name, s)).save(folder / f"{name}-{s}.png")
    (folder / "stack").mkdir()
    for i, (name, s) in enumerate([("lytro-03", "A"), ("lytro-03", "B"), ("lytro-07", "A")], start=1):
        Image.fromarray(_crop(name, s)).save(folder / "stack" / f"frame{i}.png")
    Image.fromarray(_crop("lytro-09", "A")).save(folder / "bad-A.png")
    (folder / "bad-B.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def _in_process(batch_dir: Path, out: Path, model: str) -> list[batch.GroupOutcome]:
    return batch.fuse_batch(api.load_fuser(model), batch.batch_groups(batch_dir), out, progress=False)


def _table(out: Path) -> list[tuple]:
    """batch.csv without the seconds column."""
    with open(out / batch.LOG_NAME, newline="") as fh:
        return [(r["group"], r["frames"], r["status"], r["message"]) for r in csv.DictReader(fh)]


def _same_outputs(a: Path, b: Path) -> None:
    images = sorted(p.name for p in a.iterdir() if p.suffix == ".png")
    assert images == sorted(p.name for p in b.iterdir() if p.suffix == ".png")
    for name in images:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _table(a) == _table(b)


def test_entry_point_equals_in_process_batch_and_fails_only_the_bad_group(batch_dir, tmp_path, capsys):
    local, beamed = tmp_path / "local", tmp_path / "beam"
    _in_process(batch_dir, local, "mffgan")
    assert beam.main([str(batch_dir), "-o", str(beamed), "--beam-options", DIRECT]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "group bad" in captured.err and "cannot read image" in captured.err
    assert "4 fused, 0 skipped, 1 failed" in captured.out
    _same_outputs(local, beamed)
    rows = {r[0]: r for r in _table(beamed)}
    assert rows["stack"][1:3] == ("3", "fused") and rows["bad"][2] == "failed"
    assert not (beamed / "bad.png").exists()
    # resume: an existing output is kept and logged as skipped
    (beamed / "lytro-05.png").unlink()
    before = (beamed / "lytro-01.png").stat().st_mtime_ns
    assert beam.main([str(batch_dir), "-o", str(beamed), "--skip-existing", "--beam-options", DIRECT]) == 2
    rows = {r[0]: r for r in _table(beamed)}
    assert rows["lytro-01"][2] == "skipped" and rows["lytro-05"][2] == "fused"
    assert (beamed / "lytro-01.png").stat().st_mtime_ns == before
    assert (beamed / "lytro-05.png").read_bytes() == (local / "lytro-05.png").read_bytes()


def test_gacn_stack_takes_the_calibration_path_byte_for_byte(batch_dir, tmp_path):
    local, beamed = tmp_path / "local", tmp_path / "beam"
    _in_process(batch_dir, local, "gacn")
    outcomes = beam.fuse_batch(batch.batch_groups(batch_dir), beamed, "gacn", beam_options=DIRECT)
    assert [o.status for o in outcomes].count("failed") == 1
    _same_outputs(local, beamed)


def test_fuse_batch_engine_beam_on_the_command_line(batch_dir, tmp_path, capsys):
    """Through ``fusion-tf fuse --batch … --engine beam`` (the CLI wiring)."""
    local, beamed = tmp_path / "local", tmp_path / "beam"
    assert main(["fuse", "--batch", str(batch_dir), "-o", str(local)]) == 2
    assert main(["fuse", "--batch", str(batch_dir), "-o", str(beamed), "--engine", "beam",
                 "--beam-options", DIRECT]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "group bad" in err
    _same_outputs(local, beamed)


def test_without_beam_the_error_is_one_line(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "apache_beam", None)  # import apache_beam → ImportError
    with pytest.raises(beam.FusionError, match=r'pip install -e "\.\[beam\]"'):
        beam.model_handler("mffgan")
