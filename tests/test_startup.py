"""Start-up: ``fuse --backend onnxruntime`` with a cached conversion runs without TensorFlow.

The real CLI runs in fresh processes under ``python -X importtime`` (stderr lists every module the
process imported), on a 64×64 crop of the bundled Lytro pair so that conversions stay short.  The
first run converts (and imports TF: the observable can fail); the second must import none of
tensorflow, keras, tf2onnx and write the same bytes.  A damaged or stale cache is converted again.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fusion_tf.core.imageio import read_image

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "tf2onnx")
CROP = np.s_[128:192, 320:384]  # textured, near and far focus both present

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnxruntime", "tf2onnx")),  # find_spec: no TF import
    reason="optional extra 'onnx' not installed (onnxruntime, tf2onnx): pip install -e '.[onnx]'")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> list[str]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("pair")
    paths = []
    for side in "AB":
        image = read_image(ROOT / f"datasets/samples/lytro-01-{side}.jpg")[CROP]
        Image.fromarray(image).save(folder / f"{side}.png")
        paths.append(str(folder / f"{side}.png"))
    return paths


def fuse(pair, out: Path, cache: Path, *extra: str) -> tuple[set[str], list[str]]:
    """Run ``fusion-tf fuse`` in a fresh process: (top-level modules it imported, its other stderr lines)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "fusion_tf.cli", "fuse", *pair, "-o", str(out),
           "--backend", "onnxruntime", "--quiet", *extra]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # set by fusion_tf in this process
    proc = subprocess.run(cmd, cwd=ROOT, env={**env, "FUSION_TF_CACHE": str(cache)}, capture_output=True, text=True,
                          timeout=600)
    lines = proc.stderr.splitlines()
    modules = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines if line.startswith("import time:")}
    messages = [line for line in lines if not line.startswith("import time:")]
    assert proc.returncode == 0, messages
    assert "Traceback" not in proc.stderr
    return modules, messages


def _sharpness(image: np.ndarray) -> float:
    grey = image.astype(np.float64).mean(axis=-1)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


@pytest.mark.parametrize("model", ["mffgan", "gipcgan"])
def test_cached_run_imports_no_tensorflow_and_writes_the_same_bytes(pair, tmp_path, model):
    cache, outputs = tmp_path / "cache", [tmp_path / "first.png", tmp_path / "second.png"]
    depths = [tmp_path / "first-depth.png", tmp_path / "second-depth.png"]
    converting, _ = fuse(pair, outputs[0], cache, "--model", model, "--save-depth", str(depths[0]))
    assert "tensorflow" in converting and "tf2onnx" in converting  # the observable sees TF when it loads
    cached, messages = fuse(pair, outputs[1], cache, "--model", model, "--save-depth", str(depths[1]))
    assert not cached & set(HEAVY), sorted(cached & set(HEAVY))
    assert "onnxruntime" in cached and not messages
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert depths[0].read_bytes() == depths[1].read_bytes()
    # a real fusion, not a blur: sharper than the plain average of the sources
    fused, (a, b) = read_image(outputs[1]), (read_image(p) for p in pair)
    average = (a.astype(np.float64) + b) / 2
    assert fused.shape == a.shape and np.abs(fused - average).mean() > 2.0
    assert _sharpness(fused) > 1.1 * _sharpness(average)


def test_cached_tiled_run_imports_no_tensorflow_and_writes_the_same_bytes(pair, tmp_path):
    """--tile on cached graphs: the tile geometry needs no TF either, and the bytes are the converting
    run's (with a depth map, whose focus measure is tiled too)."""
    cache, outputs = tmp_path / "cache", [tmp_path / "first.png", tmp_path / "second.png"]
    fuse(pair, outputs[0], cache, "--tile", "24", "--save-depth", str(tmp_path / "d0.png"))
    modules, messages = fuse(pair, outputs[1], cache, "--tile", "24", "--save-depth", str(tmp_path / "d1.png"))
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert not messages and outputs[0].read_bytes() == outputs[1].read_bytes()
    assert (tmp_path / "d0.png").read_bytes() == (tmp_path / "d1.png").read_bytes()


def test_damaged_or_incomplete_cache_is_converted_again_with_one_warning(pair, tmp_path):
    cache, first = tmp_path / "cache", tmp_path / "first.png"
    fuse(pair, first, cache)
    (entry,) = (cache / "onnx" / "index").glob("mffgan-*.json")
    network = next(p for p in (cache / "onnx").glob("mffgan-*.onnx") if "-focus-" not in p.name)
    # (a graph onnxruntime cannot load: tests/test_onnx_backend.py, in-process)
    damages = {"index entry": lambda: entry.write_text('{"key": '), "missing graph": lambda: network.unlink()}
    for what, damage in damages.items():
        damage()
        modules, messages = fuse(pair, tmp_path / f"{what}.png", cache)
        assert len(messages) == 1 and messages[0].startswith("warning: ") and "converting" in messages[0], what
        assert "tensorflow" in modules, what
        assert (tmp_path / f"{what}.png").read_bytes() == first.read_bytes(), what
    modules, messages = fuse(pair, tmp_path / "repaired.png", cache)  # the entry was written again
    assert not modules & set(HEAVY) and not messages


def test_an_entry_for_weights_that_changed_since_is_not_reused(pair, tmp_path):
    import h5py

    weights, cache = tmp_path / "generator.weights.h5", tmp_path / "cache"
    weights.write_bytes((ROOT / "checkpoints/mffgan/generator.weights.h5").read_bytes())
    fuse(pair, tmp_path / "first.png", cache, "--weights", str(weights))
    modules, _ = fuse(pair, tmp_path / "cached.png", cache, "--weights", str(weights))
    assert not modules & set(HEAVY)
    with h5py.File(weights, "r+") as f:  # same file, same size class, other weights
        kernels = []
        f.visititems(lambda name, obj: kernels.append(obj) if isinstance(obj, h5py.Dataset) and obj.ndim == 4 else None)
        kernels[0][...] = kernels[0][...] * -1.0
    modules, messages = fuse(pair, tmp_path / "changed.png", cache, "--weights", str(weights))
    assert "tensorflow" in modules and not messages  # a miss, not a damaged entry
    assert (tmp_path / "changed.png").read_bytes() != (tmp_path / "first.png").read_bytes()
    assert len(list((cache / "onnx" / "index").glob("mffgan-*.json"))) == 2


def test_the_fuse_modules_import_without_tensorflow():
    """What a cached run imports must not pull TF in at import time (a regression here is silent:
    the run still works, only ~5 s slower)."""
    code = ("import sys, fusion_tf, fusion_tf.cli, fusion_tf.api, fusion_tf.registry, fusion_tf.weights.resolve, "
            "fusion_tf.inference.onnx_cache, fusion_tf.inference.luma, fusion_tf.inference.mffgan, "
            "fusion_tf.inference.gipcgan, fusion_tf.inference.tiling, fusion_tf.core.focus, fusion_tf.core.imageio; "
            "fusion_tf.cli.build_parser('fuse'); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_focus_graphs_equal_the_focus_measures():
    """The ONNX backend converts ``focus_graph``; it must stay the very measure the TF path uses."""
    import tensorflow as tf

    from fusion_tf.inference.gipcgan import GIPCGANFuser
    from fusion_tf.inference.mffgan import MFFGANFuser

    plane = np.random.default_rng(0).uniform(-1, 1, (23, 31)).astype(np.float32)
    for fuser in (MFFGANFuser, GIPCGANFuser):
        graph = fuser.focus_graph(tf.constant(plane[None, ..., None])).numpy()[0, ..., 0]
        assert np.array_equal(graph, fuser.focus_measure(plane)), fuser.__name__
