"""``fusion-tf evaluate`` (fusion_tf.evaluation.command): inputs, outputs, models, failures."""

from __future__ import annotations

import argparse
import csv
import json
import shutil

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy import ndimage

from fusion_tf import metrics as M
from fusion_tf.evaluation import command


def run_cmd(argv, capsys):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    rc = command.run(parser.parse_args([str(a) for a in argv]))
    out, err = capsys.readouterr()
    return rc, out, err


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def max_laplacian_fuse(images):
    """A real (if simple) fusion rule: per pixel, the source with the largest |Laplacian|."""
    lap = np.stack([np.abs(ndimage.laplace(M.rgb2gray(im))) for im in images])
    idx = np.argmax(lap, axis=0)
    stack = np.stack(images)
    if stack.ndim == 4:
        idx = idx[..., None].repeat(stack.shape[-1], axis=-1)
    return np.take_along_axis(stack, idx[None], axis=0)[0]


@pytest.fixture
def lytro_sources(shared, tmp_path):
    """Two 520 x 520 Lytro pairs in a fresh folder (``<image>-A/-B`` naming)."""
    src = tmp_path / "sources"
    src.mkdir()
    for n in ("01", "02"):
        for s in "AB":
            shutil.copy(shared / "data" / "lytro" / "pairs" / f"lytro-{n}-{s}.jpg", src)
    return src


def _write_fused(folder, sources, names=("lytro-01", "lytro-02"), suffix=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        imgs = [np.asarray(Image.open(sources / f"{name}-{s}.jpg")) for s in "AB"]
        Image.fromarray(max_laplacian_fuse(imgs)).save(folder / f"{name}{suffix}")
    return folder


def _assert_nothing_left(tmp_path, out):
    assert not out.exists()
    assert not list(out.parent.glob(".evaluate-*"))


# --------------------------------------------------------------------------- success paths
def test_fused_folders_write_all_reports(lytro_sources, tmp_path, capsys):
    fused = _write_fused(tmp_path / "maxlap", lytro_sources)
    avg = tmp_path / "avg"
    avg.mkdir()
    for name in ("lytro-01", "lytro-02"):
        a, b = (np.asarray(Image.open(lytro_sources / f"{name}-{s}.jpg"), dtype=np.float64) for s in "AB")
        Image.fromarray(M.matlab_round((a + b) / 2).astype(np.uint8)).save(avg / f"{name}.jpg", quality=95)
    out = tmp_path / "report"
    rc, stdout, err = run_cmd(["--sources", lytro_sources, "--fused", f"maxlap={fused}", "--fused", f"avg={avg}",
                               "--metrics", "qabf,qg_toolbox,en,qcv", "--workers", "2", "--out", out], capsys)
    assert rc == 0, err
    for name in ("per_image.csv", "summary.csv", "summary.md", "summary.json", "bars.png", "per_image.png"):
        assert (out / name).is_file(), name
    rows = read_csv(out / "per_image.csv")
    assert list(rows[0]) == ["method", "image", "qabf", "qg_toolbox", "en", "qcv"]  # no seconds without models
    assert [(r["method"], r["image"]) for r in rows] == [
        ("maxlap", "lytro-01"), ("maxlap", "lytro-02"), ("avg", "lytro-01"), ("avg", "lytro-02")]
    # the values are exactly the metric functions on rgb2gray'd images
    a, b = (M.rgb2gray(np.asarray(Image.open(lytro_sources / f"lytro-02-{s}.jpg"))) for s in "AB")
    f = M.rgb2gray(np.asarray(Image.open(fused / "lytro-02.png")))
    assert float(rows[1]["qabf"]) == M.qabf(a, b, f)
    assert float(rows[1]["qcv"]) == M.qcv(a, b, f)
    summary = json.loads((out / "summary.json").read_text())
    qabf = [float(r["qabf"]) for r in rows[:2]]
    assert summary["methods"]["maxlap"]["metrics"]["qabf"]["mean"] == pytest.approx(np.mean(qabf))
    assert summary["methods"]["maxlap"]["metrics"]["qabf"]["std"] == pytest.approx(np.std(qabf, ddof=1))
    assert summary["metrics"]["qcv"]["higher_is_better"] is False
    srow = read_csv(out / "summary.csv")[0]
    assert srow["method"] == "maxlap" and float(srow["qabf_mean"]) == pytest.approx(np.mean(qabf))
    md = (out / "summary.md").read_text()
    assert "| `qcv` ↓ |" in md and " ± " in md and "maxlap" in stdout
    with Image.open(out / "bars.png") as im:
        assert im.size[0] > 100


def test_match_csv_maps_other_names_and_reproduces_published_scores(shared, tmp_path, capsys):
    """CSV-only methods (method,image,path) pointing at the Liu 2020 results; values must equal
    the published per-image scores."""
    root = shared / "reference" / "metrics" / "liu2020"
    match = tmp_path / "match.csv"
    with open(match, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "image", "path"])
        for method in ("dwt", "cnn"):
            for n in range(1, 11):
                w.writerow([method, f"g_{n:02d}", root / f"g_{n:02d}_{method}.tif"])
    out = tmp_path / "liu"
    rc, _, err = run_cmd(["--sources", shared / "data" / "grayscale", "--match", match, "--metrics", "qabf,qmi",
                          "--workers", "2", "--no-plots", "--out", out], capsys)
    assert rc == 0, err
    assert not (out / "bars.png").exists()
    q = scipy.io.loadmat(root / "Q_grayscale.mat")["Q"]
    rows = read_csv(out / "per_image.csv")
    assert len(rows) == 20
    for r in rows:
        m = ("dwt", "cnn").index(r["method"])
        k = int(r["image"][2:]) - 1
        assert float(r["qmi"]) == pytest.approx(q[(0, 16)[m], 0, k], abs=1e-9)
        assert float(r["qabf"]) == pytest.approx(q[(0, 16)[m], 2, k], abs=1e-9)


def test_model_path_times_each_call_and_saves_fused(lytro_sources, tmp_path, capsys, monkeypatch):
    import fusion_tf.registry

    calls = []

    class ToyFuser:  # the package's Fuser protocol: .fuse(images) -> object with .fused
        def fuse(self, images):
            calls.append(len(images))
            return type("Result", (), {"fused": max_laplacian_fuse(images)})()

    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"")  # exists: the weights are resolved (format, presence) before anything is fused

    def load_fuser(model, weights=None):  # columns are labels; the model and weights reach the loader
        assert (model, weights) in {("mffgan", None), ("gacn", str(weights_path))}
        return ToyFuser() if weights is None else max_laplacian_fuse  # plain callable contract too

    weights_path = weights
    monkeypatch.setattr(fusion_tf.registry, "load_fuser", load_fuser)
    out = tmp_path / "models"
    rc, _, err = run_cmd(["--sources", lytro_sources, "--model", "toy:mffgan", "--model", f"plain:gacn={weights}",
                          "--metrics", "qabf,en", "--workers", "1", "--no-plots", "--out", out], capsys)
    assert rc == 0, err
    assert calls == [2, 2]
    rows = read_csv(out / "per_image.csv")
    assert list(rows[0]) == ["method", "image", "qabf", "en", "seconds"]
    assert {r["method"] for r in rows} == {"toy", "plain"} and all(float(r["seconds"]) > 0 for r in rows)
    # both contracts produce the same image, saved losslessly
    saved = np.asarray(Image.open(out / "fused" / "toy" / "lytro-01.png"))
    np.testing.assert_array_equal(saved, np.asarray(Image.open(out / "fused" / "plain" / "lytro-01.png")))
    assert rows[0]["qabf"] == next(r["qabf"] for r in rows if r["method"] == "plain" and r["image"] == "lytro-01")


def test_default_run_uses_samples_and_available_models(tmp_path, monkeypatch, capsys):
    import fusion_tf.registry

    monkeypatch.setattr(fusion_tf.registry, "available_models", lambda: ["gacn"])
    monkeypatch.setattr(fusion_tf.registry, "load_fuser", lambda name, weights=None: max_laplacian_fuse)
    out = tmp_path / "evaluate_default"
    assert command.default_run(out, metrics="qg_toolbox,en") == 0
    rows = read_csv(out / "per_image.csv")
    assert {r["image"] for r in rows} == {p.stem[:-2] for p in (command._samples_dir()).glob("*-A.jpg")}
    assert {r["method"] for r in rows} == {"gacn"}


def test_more_than_two_sources(shared, tmp_path, capsys):
    triple = shared / "data" / "lytro" / "triple"
    fused = tmp_path / "fused"
    fused.mkdir()
    names = sorted({p.stem[:-2] for p in triple.glob("*-A.*")})
    for name in names:
        imgs = [np.asarray(Image.open(next(triple.glob(f"{name}-{s}.*")))) for s in "ABC"]
        Image.fromarray(max_laplacian_fuse(imgs)).save(fused / f"{name}.png")
    rc, _, err = run_cmd(["--sources", triple, "--fused", f"x={fused}", "--metrics", "en,sd,sf",
                          "--no-plots", "--out", tmp_path / "ok"], capsys)
    assert rc == 0, err
    rc, _, err = run_cmd(["--sources", triple, "--fused", f"x={fused}", "--metrics", "en,qabf",
                          "--out", tmp_path / "bad"], capsys)
    assert rc == 2 and "qabf" in err and "2 sources" in err
    _assert_nothing_left(tmp_path, tmp_path / "bad")


# --------------------------------------------------------------------------- failures: exit 2, nothing left
def test_bad_inputs_exit_2_with_one_line_and_no_outputs(lytro_sources, tmp_path, capsys):
    fused = _write_fused(tmp_path / "fused", lytro_sources)
    out = tmp_path / "out"

    def fails(argv, *needles):
        rc, _, err = run_cmd(argv + ["--out", out], capsys)
        assert rc == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        for needle in needles:
            assert needle in lines[0], lines[0]
        _assert_nothing_left(tmp_path, out)

    fails(["--sources", tmp_path / "nope", "--fused", f"f={fused}"], "not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(["--sources", empty, "--fused", f"f={fused}"], "no images")
    odd = tmp_path / "odd"
    odd.mkdir()
    shutil.copy(lytro_sources / "lytro-01-A.jpg", odd / "holiday.jpg")
    fails(["--sources", odd, "--fused", f"f={fused}"], "holiday.jpg")
    fails(["--sources", lytro_sources, "--fused", f"f={tmp_path / 'missing'}"], "not a folder")
    fails(["--sources", lytro_sources, "--fused", f"f={fused}", "--metrics", "qabf,bogus"],
          "bogus", "valid: en, sd")
    fails(["--sources", lytro_sources], "nothing to evaluate")
    fails(["--sources", lytro_sources, "--fused", "justaname"], "NAME=DIR")

    (fused / "lytro-02.png").rename(tmp_path / "moved.png")
    fails(["--sources", lytro_sources, "--fused", f"f={fused}"], "lytro-02")  # fused image missing

    Image.fromarray(np.zeros((100, 120), np.uint8)).save(fused / "lytro-02.png")
    fails(["--sources", lytro_sources, "--fused", f"f={fused}"], "120x100")  # wrong size

    (fused / "lytro-02.png").write_bytes(b"not an image at all")
    fails(["--sources", lytro_sources, "--fused", f"f={fused}"], "lytro-02.png")  # unreadable


def test_failure_while_scoring_leaves_previous_report_untouched(lytro_sources, tmp_path, capsys):
    fused = _write_fused(tmp_path / "fused", lytro_sources)
    out = tmp_path / "out"
    rc, _, err = run_cmd(["--sources", lytro_sources, "--fused", f"f={fused}", "--metrics", "en",
                          "--no-plots", "--out", out], capsys)
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # a truncated PNG: its header (size) is fine, decoding fails inside a worker
    data = (fused / "lytro-02.png").read_bytes()
    (fused / "lytro-02.png").write_bytes(data[: len(data) // 3])
    rc, _, err = run_cmd(["--sources", lytro_sources, "--fused", f"f={fused}", "--metrics", "en,sd",
                          "--workers", "2", "--out", out], capsys)
    assert rc == 2 and err.startswith("error: ") and "lytro-02" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".evaluate-*"))


def test_cli_wiring(lytro_sources, tmp_path, capsys):
    from fusion_tf.cli import main

    fused = _write_fused(tmp_path / "fused", lytro_sources)
    rc = main(["evaluate", "--sources", str(lytro_sources), "--fused", f"f={fused}", "--metrics", "sd",
               "--no-plots", "--out", str(tmp_path / "cli")])
    assert rc == 0 and (tmp_path / "cli" / "per_image.csv").is_file()
    assert main(["evaluate", "--sources", str(tmp_path / "nope"), "--fused", f"f={fused}",
                 "--out", str(tmp_path / "cli2")]) == 2


def test_single_image_splits_metrics_over_workers(lytro_sources, tmp_path, capsys):
    from fusion_tf.evaluation import runner

    groups = runner._split(["en", "qp", "fmi_dct", "qabf", "fmi_pixel"], 2)
    assert sorted(sum(groups, [])) == sorted(["en", "qp", "fmi_dct", "qabf", "fmi_pixel"])
    assert not any({"qp", "fmi_dct"} <= set(g) for g in groups)  # the two heaviest go to different workers
    for name in ("lytro-02-A.jpg", "lytro-02-B.jpg"):
        (lytro_sources / name).unlink()
    fused = _write_fused(tmp_path / "fused", lytro_sources, names=("lytro-01",))
    rows = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        rc, _, err = run_cmd(["--sources", lytro_sources, "--fused", f"f={fused}", "--metrics", "qabf,en,qcb,sd",
                              "--workers", workers, "--no-plots", "--out", out], capsys)
        assert rc == 0, err
        rows[workers] = read_csv(out / "per_image.csv")
    assert rows["1"] == rows["2"] and list(rows["2"][0]) == ["method", "image", "qabf", "en", "qcb", "sd"]
