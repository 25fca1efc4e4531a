"""The paths a user walks, through the same entry points they call (``fusion_tf.cli.main``, the console
script): default weights, bad input, quiet output, unexpected errors.

Every test here can fail on a real regression: the default-weights tests compare bytes with the
shipped file (a random or wrong network differs), the bad-input table checks exit code, the exact
number of stderr lines and that nothing was written or overwritten.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusion_tf import registry
from fusion_tf.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "samples"
SHIPPED = [name for name in registry.MODELS if name in registry.available_models()]


@pytest.fixture(scope="module")
def crop_pair(tmp_path_factory) -> tuple[str, str]:
    """A 72×96 crop of the bundled sample pair (colour, both focus regions): fast for every model."""
    folder = tmp_path_factory.mktemp("pair")
    paths = []
    for s in "AB":
        im = np.asarray(Image.open(SAMPLES / f"lytro-01-{s}.jpg"))[220:292, 180:276]
        paths.append(str(folder / f"crop-{s}.png"))
        Image.fromarray(im).save(paths[-1])
    return paths[0], paths[1]


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_every_model_with_weights_in_the_registry_ships_them():
    """The four trained models ship; a missing file here would silently change what `fuse` runs."""
    assert set(SHIPPED) == {"mffgan", "gacn", "gipcgan", "mfifgan"}


@pytest.mark.parametrize("model", ["mffgan", "gacn", "gipcgan", "mfifgan"])
def test_fuse_default_weights_are_the_shipped_file(model, crop_pair, tmp_path, capsys):
    """`fuse --model M` without --weights == with --weights <shipped file>, byte for byte — and both
    differ from a randomly initialised network (the GACN default once ran one)."""
    default, explicit = tmp_path / "default.png", tmp_path / "explicit.png"
    assert main(["fuse", "--model", model, *crop_pair, "-o", str(default)]) == 0
    shipped = registry.get(model).default_weights
    assert main(["fuse", "--model", model, "--weights", str(shipped), *crop_pair, "-o", str(explicit)]) == 0
    assert _digest(default) == _digest(explicit)
    from fusion_tf.weights.resolve import load_network

    assert load_network(model)[1].shipped and load_network(model)[1].path == shipped
    # a random network does not reproduce the shipped result
    from fusion_tf.weights import resolve as R

    network = R._call(registry.get(model).inference_network, R.WeightsSource(shipped, "keras"))
    random_fuser = R._call(registry.get(model).fuser, network)
    srcs = [np.asarray(Image.open(p)) for p in crop_pair]
    assert not np.array_equal(random_fuser.fuse(srcs).fused, np.asarray(Image.open(default)))


@pytest.mark.parametrize("model", ["mffgan", "gacn"])
def test_export_default_weights_are_the_shipped_file(model, crop_pair, tmp_path, capsys):
    """`export` without --weights serves the same pixels as with the shipped file."""
    import tensorflow as tf

    outputs = []
    for i, extra in enumerate(([], ["--weights", str(registry.get(model).default_weights)])):
        out = tmp_path / f"m{i}"
        assert main(["export", "--model", model, *extra, "-o", str(out)]) == 0
        serve = tf.saved_model.load(str(out)).signatures["serving_default"]
        a, b = (tf.constant(np.asarray(Image.open(p))[None]) for p in crop_pair)
        outputs.append(serve(img_a=a, img_b=b)["fused"].numpy())
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_model_without_shipped_weights_refuses(crop_pair, tmp_path, capsys):
    for argv in (["fuse", "--model", "gipcgan-compact", *crop_pair, "-o", str(tmp_path / "o.png")],
                 ["export", "--model", "gipcgan-compact", "-o", str(tmp_path / "srv")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "gipcgan-compact has no shipped weights: pass --weights" in err
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- bad input: one line, exit 2
def _bad_input_cases(tmp: Path, pair: tuple[str, str]):
    """(case, argv, expected message part); every argv must fail before writing anything."""
    a, b = pair
    text = tmp / "notes.jpg"
    text.write_text("not an image")
    small = tmp / "small.png"
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(small)
    folder = tmp / "folder"
    folder.mkdir()
    blocker = tmp / "file.txt"
    blocker.write_text("x")
    readme = ROOT / "README.md"
    mffgan_w = str(registry.get("mffgan").default_weights)
    fuse = ["fuse", a, b]
    return [
        ("-o is the first source", [*fuse, "-o", a], "is one of the input images"),
        ("-o is a source by another spelling", [*fuse, "-o", str(Path(a).parent / ".." / Path(a).parent.name / Path(a).name)],
         "is one of the input images"),
        ("-o is an existing folder", [*fuse, "-o", str(folder)], "is a folder; give a file name"),
        ("-o folder with an image suffix", [*fuse, "-o", str(_mkdir(tmp / "dir.png"))], "is a folder"),
        ("-o under a file", [*fuse, "-o", str(blocker / "out.png")], "is a file, not a folder"),
        ("-o with an unknown suffix", [*fuse, "-o", str(tmp / "out.txt")], "use one of"),
        ("--save-map is -o", ["fuse", "--model", "gacn", a, b, "-o", str(tmp / "o.png"), "--save-map", str(tmp / "o.png")],
         "name the same file"),
        ("a source is a folder", ["fuse", a, str(folder), "-o", str(tmp / "o.png")], "is a folder, not an image"),
        ("a source is missing", ["fuse", a, str(tmp / "nope.png"), "-o", str(tmp / "o.png")], "image not found"),
        ("a source is not an image", ["fuse", a, str(text), "-o", str(tmp / "o.png")], "cannot read image"),
        ("sources of different sizes", ["fuse", a, str(small), "-o", str(tmp / "o.png")], "size mismatch"),
        ("one source", ["fuse", a, "-o", str(tmp / "o.png")], "need at least 2 images"),
        ("--tile 0", [*fuse, "-o", str(tmp / "o.png"), "--tile", "0"], "must be at least 16"),
        ("--tile not a number", [*fuse, "-o", str(tmp / "o.png"), "--tile", "big"], "expected a whole number"),
        ("unknown model", ["fuse", "--model", "nope", a, b, "-o", str(tmp / "o.png")], "unknown model 'nope'"),
        ("option the model does not take", [*fuse, "-o", str(tmp / "o.png"), "--multi", "serial"],
         "does not take --multi"),
        ("--save-map of a model without maps", [*fuse, "-o", str(tmp / "o.png"), "--save-map", str(tmp / "m.png")],
         "produces no decision map"),
        ("weights missing", [*fuse, "-o", str(tmp / "o.png"), "--weights", str(tmp / "w.weights.h5")], "weights not found"),
        ("weights of unknown format", [*fuse, "-o", str(tmp / "o.png"), "--weights", str(readme)],
         "unknown weights format"),
        ("weights of another model", ["fuse", "--model", "gacn", a, b, "-o", str(tmp / "o.png"), "--weights", mffgan_w],
         "does not hold gacn weights"),
        ("foreign format the model cannot load", ["fuse", "--model", "mffgan", a, b, "-o", str(tmp / "o.png"),
                                                  "--weights", str(_touch(tmp / "g.npz"))], "which mffgan cannot load"),
        ("export into an existing folder", ["export", "-o", str(folder)], "exists; choose a new folder"),
        ("export under a file", ["export", "-o", str(blocker / "srv")], "is a file, not a folder"),
        ("export of an unknown model", ["export", "--model", "nope", "-o", str(tmp / "srv")], "unknown model"),
        ("evaluate a missing folder", ["evaluate", "--sources", str(tmp / "none"), "--fused", f"x={folder}",
                                       "--out", str(tmp / "r")], "not a folder"),
        ("evaluate an unknown model", ["evaluate", "--sources", str(SAMPLES), "--model", "orig:nope", "--out",
                                       str(tmp / "r")], "unknown model 'nope'"),
        ("evaluate with missing weights", ["evaluate", "--sources", str(SAMPLES), "--model",
                                           f"orig:mffgan={tmp / 'x.weights.h5'}", "--out", str(tmp / "r")],
         "weights not found"),
        ("evaluate an unknown metric", ["evaluate", "--sources", str(SAMPLES), "--fused", f"x={folder}",
                                        "--metrics", "bogus", "--out", str(tmp / "r")], "bogus"),
        ("train from a missing store", ["train", "mffgan", "--store", str(tmp / "none"), "--run-dir", str(tmp / "run")],
         "not"),
        ("prepare with stride 0", ["prepare", "mffgan", "--pairs", str(SAMPLES), "--stride", "0", "--out",
                                   str(tmp / "store")], "stride"),
        ("prepare with patch 0", ["prepare", "mffgan", "--pairs", str(SAMPLES), "--patch", "0", "--out",
                                  str(tmp / "store")], "patch"),
    ]


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _snapshot(folder: Path) -> dict:
    return {p: (p.stat().st_size, _digest(p) if p.is_file() else None) for p in folder.rglob("*")}


def test_bad_input_table(tmp_path, crop_pair, capsys):
    """Every subcommand × a battery of bad inputs: exit 2, one stderr line, no traceback, nothing written."""
    src = tmp_path / "src"
    src.mkdir()
    pair = tuple(str(src / Path(p).name) for p in crop_pair)
    for p, q in zip(crop_pair, pair):
        Path(q).write_bytes(Path(p).read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    cases = _bad_input_cases(work, pair)
    failures = []
    for case, argv, expected in cases:
        before = _snapshot(tmp_path)
        code = main(argv)
        captured = capsys.readouterr()
        err = captured.err
        problems = []
        if code != 2:
            problems.append(f"exit {code}")
        if err.count("\n") != 1 or not err.strip():
            problems.append(f"{err.count(chr(10))} stderr lines")
        if "Traceback" in err:
            problems.append("traceback")
        if expected not in err:
            problems.append(f"message lacks {expected!r}")
        if _snapshot(tmp_path) != before:
            problems.append("files changed")
        if problems:
            failures.append(f"{case}: {', '.join(problems)}: {err.strip()[:200]!r}")
    assert not failures, "\n".join(failures)


def test_unexpected_errors_are_one_line_unless_debug(crop_pair, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug\nsecond line")

    monkeypatch.setattr(registry, "load_fuser", broken)
    argv = ["fuse", *crop_pair, "-o", str(tmp_path / "o.png")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == "error: unexpected RuntimeError: simulated bug (run with --debug for the traceback)\n"
    with pytest.raises(RuntimeError, match="simulated bug"):
        main(["--debug", *argv])
    assert not (tmp_path / "o.png").exists()


# --------------------------------------------------------------------------- quiet by default
def _run_console(args, env_extra=None, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "fusion_tf.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_plain_fuse_prints_exactly_its_result_line(crop_pair, tmp_path):
    out = tmp_path / "fused.png"
    proc = _run_console(["fuse", *crop_pair, "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fused 2 images with mffgan") and lines[0].endswith(str(out))
    # --verbose gives TensorFlow its voice back (the C++ log lines appear)
    verbose = _run_console(["fuse", "--verbose", *crop_pair, "-o", str(tmp_path / "v.png")])
    assert verbose.returncode == 0 and verbose.stdout.count("\n") == 1 and verbose.stderr.strip()


def test_bad_input_in_a_real_process_has_no_traceback(crop_pair, tmp_path):
    before = Path(crop_pair[0]).read_bytes()
    proc = _run_console(["fuse", *crop_pair, "-o", crop_pair[0]])
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert Path(crop_pair[0]).read_bytes() == before
