"""``--tile auto`` (the default): whole-image fusion unless the image would not fit memory, then tiles.

The user's failure this prevents: a 24 Mpx camera pair through GACN needs ~50 GiB whole, and the
process is killed without a word.  Tests pretend the machine is small (``FUSION_TF_MEMORY_GIB``) and
shrink the auto tile, so a 97×131 crop takes the same path a 6000×4000 photo takes on a real machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fusion_tf
from fusion_tf import memory
from fusion_tf.cli import main
from fusion_tf.core.imageio import image_size, read_image
from fusion_tf.errors import FusionError, InputImageError
from fusion_tf.inference import tiling

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "samples"


@pytest.fixture
def pair(tmp_path) -> list[str]:
    paths = []
    for side in "AB":
        image = read_image(SAMPLES / f"lytro-01-{side}.jpg")[180:277, 150:281]  # 97×131, near and far focus
        paths.append(str(tmp_path / f"{side}.png"))
        Image.fromarray(image).save(paths[-1])
    return paths


@pytest.fixture
def stitch_calls(monkeypatch) -> list:
    """Counts tiled runs: every tiled fusion assembles its output with ``tiling.stitch``."""
    from fusion_tf.inference import gacn_tiled, mfifgan_tiled

    calls = []
    real = tiling.stitch
    for module in (tiling, gacn_tiled, mfifgan_tiled):
        monkeypatch.setattr(module, "stitch", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_plan_follows_the_measured_cost_and_the_memory(monkeypatch):
    monkeypatch.setenv("FUSION_TF_MEMORY_GIB", "16")
    assert memory.available_bytes() == 16 * memory.GIB
    # 24 Mpx: GACN ~50 GiB whole → tiles, with the reason in the note
    plan = memory.plan_tile("gacn", 4000, 6000, "auto")
    assert plan.tile == memory.AUTO_TILE
    assert "6000×4000" in plan.note and "GiB" in plan.note and "--tile none" in plan.note
    # 1600×1200: ~4.6 GiB fits 80 % of 16 GiB → whole, silently
    assert memory.plan_tile("gacn", 1200, 1600, "auto") == memory.TilePlan(None)
    # the purely local networks: tiled whenever larger than a tile (same bytes, faster), except under XLA
    assert memory.plan_tile("mffgan", 1200, 1600, "auto") == memory.TilePlan(memory.AUTO_TILE)
    assert memory.plan_tile("gipcgan", 1200, 1600, "auto", jit_compile=True) == memory.TilePlan(None)
    assert memory.plan_tile("mffgan", 520, 520, "auto") == memory.TilePlan(None)
    # what the user asked for is kept whatever the memory
    assert memory.plan_tile("gacn", 4000, 6000, "none") == memory.TilePlan(None)
    assert memory.plan_tile("gacn", 4000, 6000, None) == memory.TilePlan(None)
    assert memory.plan_tile("mffgan", 100, 100, 48) == memory.TilePlan(48)
    # an image that fits in one tile is fused whole: tiling could not lower its memory
    monkeypatch.setenv("FUSION_TF_MEMORY_GIB", "0.01")
    assert memory.plan_tile("mfifgan", memory.AUTO_TILE, memory.AUTO_TILE, "auto").tile is None
    # the costs grow with the pixels, and MFIF-GAN's (stride-4 features at 256 channels) is the highest
    for model in memory.WHOLE_IMAGE_PEAK_GIB:
        assert memory.whole_image_bytes(model, 2_000_000) > memory.whole_image_bytes(model, 1_000_000)
    assert memory.whole_image_bytes("unknown", 10**6) == memory.whole_image_bytes("mfifgan", 10**6)


@pytest.mark.parametrize("value", ["lots", "0", "-3", "nan", "inf"])
def test_a_bad_memory_override_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv("FUSION_TF_MEMORY_GIB", value)
    with pytest.raises(FusionError, match="FUSION_TF_MEMORY_GIB"):
        memory.available_bytes()


def test_cgroup_limits_are_read(tmp_path, monkeypatch):
    """Containers: the cgroup limit, not the host's free memory, is what the process may use."""
    monkeypatch.delenv("FUSION_TF_MEMORY_GIB", raising=False)
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text("123\n")
    assert memory._cgroup_headroom(tmp_path) is None  # v2, unlimited
    (tmp_path / "memory.max").write_text(f"{8 * memory.GIB}\n")
    (tmp_path / "memory.current").write_text(f"{2 * memory.GIB}\n")
    assert memory._cgroup_headroom(tmp_path) == 6 * memory.GIB
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text("1\n")
    assert memory._cgroup_headroom(v1) is None  # v1's "unlimited"
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{memory.GIB}\n")
    assert memory._cgroup_headroom(v1) == memory.GIB - 1
    assert memory._cgroup_headroom(tmp_path / "absent") is None
    found = memory.available_bytes()  # this machine: Linux, so something is known
    assert found is None or found > 0


def test_cli_auto_tiles_what_would_not_fit_and_says_so(pair, tmp_path, monkeypatch, capsys, stitch_calls):
    monkeypatch.setattr(memory, "AUTO_TILE", 48)
    monkeypatch.setenv("FUSION_TF_MEMORY_GIB", "0.5")  # below GACN's whole-image cost of any image
    gacn = ["fuse", "--model", "gacn", *pair]
    assert main([*gacn, "-o", str(tmp_path / "auto.png")]) == 0
    note = capsys.readouterr().err
    assert stitch_calls and "131×97 whole would take" in note and "48-pixel tiles" in note
    calls = len(stitch_calls)
    assert main([*gacn, "--tile", "48", "-o", str(tmp_path / "t48.png")]) == 0
    assert len(stitch_calls) > calls
    assert (tmp_path / "auto.png").read_bytes() == (tmp_path / "t48.png").read_bytes()
    # --tile none: whole image whatever the memory; --quiet: no note
    calls = len(stitch_calls)
    assert main([*gacn, "--tile", "none", "-o", str(tmp_path / "whole.png")]) == 0
    assert len(stitch_calls) == calls
    assert main([*gacn, "--quiet", "-o", str(tmp_path / "quiet.png")]) == 0
    assert len(stitch_calls) > calls and "note:" not in capsys.readouterr().err
    # tiled GACN is the whole-image fusion up to near-tie pixels of its steep sigmoids (test_tiling.py)
    differ = np.any(read_image(tmp_path / "whole.png") != read_image(tmp_path / "auto.png"), axis=-1)
    assert differ.mean() <= 0.02
    # plenty of memory: auto is whole-image fusion for GACN, without a word …
    monkeypatch.setenv("FUSION_TF_MEMORY_GIB", "64")
    calls = len(stitch_calls)
    assert main([*gacn, "-o", str(tmp_path / "g.png")]) == 0
    assert len(stitch_calls) == calls and "note:" not in capsys.readouterr().err
    assert (tmp_path / "g.png").read_bytes() == (tmp_path / "whole.png").read_bytes()
    # … while the purely local MFF-GAN is tiled anyway (exact, and faster), silently; not under --jit
    assert main(["fuse", "--model", "mffgan", *pair, "--tile", "none", "-o", str(tmp_path / "m.png")]) == 0
    assert main(["fuse", "--model", "mffgan", *pair, "-o", str(tmp_path / "fast.png")]) == 0
    assert len(stitch_calls) == calls + 1 and "note:" not in capsys.readouterr().err
    assert read_image(tmp_path / "fast.png").tobytes() == read_image(tmp_path / "m.png").tobytes()
    assert main(["fuse", "--model", "mffgan", *pair, "--jit", "-o", str(tmp_path / "jit.png")]) == 0
    assert len(stitch_calls) == calls + 1


def test_cli_auto_plans_stacks_and_batches_from_the_file_headers(pair, tmp_path, monkeypatch, capsys, stitch_calls):
    monkeypatch.setattr(memory, "AUTO_TILE", 48)
    monkeypatch.setenv("FUSION_TF_MEMORY_GIB", "0.5")
    stack = [*pair, pair[0]]  # three frames: the streaming path, sized from the first file's header
    assert image_size(pair[0]) == (97, 131)
    assert main(["fuse", "--model", "gacn", *stack, "-o", str(tmp_path / "stack.png")]) == 0
    assert stitch_calls and "48-pixel tiles" in capsys.readouterr().err
    group = tmp_path / "in" / "g"
    group.mkdir(parents=True)
    for i, p in enumerate(pair):
        (group / f"{i}.png").write_bytes(Path(p).read_bytes())
    calls = len(stitch_calls)
    assert main(["fuse", "--model", "mffgan", "--batch", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    assert len(stitch_calls) > calls and (tmp_path / "out" / "g.png").is_file()


@pytest.mark.parametrize("value", ["0", "8", "big", "-1"])
def test_bad_tile_values_are_one_line_and_exit_2(pair, tmp_path, capsys, value):
    code = main(["fuse", *pair, "--tile", value, "-o", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == 2 and "--tile" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_api_auto_tiles_with_a_warning(pair, monkeypatch, stitch_calls):
    monkeypatch.setattr(memory, "AUTO_TILE", 48)
    monkeypatch.setenv("FUSION_TF_MEMORY_GIB", "0.5")
    with pytest.warns(RuntimeWarning, match="48-pixel tiles"):
        auto = fusion_tf.fuse(pair, model="gacn")
    assert stitch_calls
    assert np.array_equal(auto.fused, fusion_tf.fuse(pair, model="gacn", tile=48).fused)
    calls = len(stitch_calls)
    whole = fusion_tf.fuse(pair, model="gacn", tile="none")
    arrays = fusion_tf.fuse([read_image(p) for p in pair], model="gacn", tile=None)  # arrays: sized by shape
    assert len(stitch_calls) == calls and np.array_equal(arrays.fused, whole.fused)
    with pytest.warns(RuntimeWarning, match="48-pixel tiles"):  # arrays are planned from their shape
        fusion_tf.fuse([read_image(p) for p in pair], model="gacn")
    with pytest.raises(InputImageError, match="auto"):
        fusion_tf.load_fuser("mffgan", tile="auto")
    assert fusion_tf.load_fuser("mffgan", tile="none").tile is None
