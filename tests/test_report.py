"""``evaluate --report`` (fusion_tf.evaluation.comparison): the report machinery on a tiny suite,
the real suite's inputs, and the failure paths."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusion_tf import metrics as M
from fusion_tf.evaluation import command, comparison
from fusion_tf.evaluation.suite import (LYTRO_TEST, Comparison, Criterion, Dataset, Method, PaperRow, Suite,
                                        default_suite)

METRICS = ("qabf", "qg_toolbox", "en", "sd")
CROP = 72  # source crops: small, so fusion and metrics take milliseconds


@pytest.fixture(scope="module")
def tiny(shared, tmp_path_factory):
    """Two Lytro test pairs cropped to 72x72 (lossless PNG), the matching crops of MFIF-GAN's published
    results, and an MFF-GAN generator with fresh random weights."""
    root = tmp_path_factory.mktemp("tiny")
    src, pub = root / "sources", root / "published"
    src.mkdir()
    pub.mkdir()
    box = (200, 160, 200 + CROP, 160 + CROP)
    for n in (1, 3):
        for s in "AB":
            with Image.open(shared / "data" / "lytro" / "pairs" / f"lytro-{n:02d}-{s}.jpg") as im:
                im.crop(box).save(src / f"lytro-{n:02d}-{s}.png")
        with Image.open(shared / "reference" / "mfif_gan" / "published" / "Lytro" / f"Lytro_fusion_{n}.jpg") as im:
            im.crop(box).save(pub / f"fused_{n}.png")
    from fusion_tf import registry

    gen = registry.build_networks("mffgan")["generator"]
    weights = root / "random.weights.h5"
    gen.save_weights(str(weights))
    return {"root": root, "sources": src, "published": pub, "weights": weights,
            "tf1": shared / "reference" / "mff_gan" / "checkpoint" / "Lytro_model" / "CGAN.model-19"}


def tiny_suite(t, published_folder=None) -> Suite:
    methods = (
        Method("orig", "mffgan", "original", model="mffgan", weights=t["tf1"], label="released TF1"),
        Method("rand", "mffgan", "ours", model="mffgan", weights=t["weights"], optional=True, label="random"),
        Method("pub", "mfifgan", "published", folder=published_folder or t["published"], pattern="fused_{n}.png"),
        Method("absent", "gacn", "ours", model="gacn", weights=t["root"] / "absent.weights.h5", optional=True),
    )
    data = (Dataset("tiny", "Tiny set", t["sources"], METRICS, ("orig", "rand", "pub", "absent"),
                    headline=("qabf", "en"), crops=("lytro-01",)),)
    criteria = (Criterion("rand within 3 % of orig on qabf", "tiny", "rand", "qabf", "within", 0.03, "orig"),
                Criterion("pub qabf at least 0.5", "tiny", "pub", "qabf", "at_least", 0.5),
                Criterion("absent qg at least 0.7", "tiny", "absent", "qg_toolbox", "at_least", 0.7))
    papers = (PaperRow("Paper X, Table 9", "printed row", "tiny", ("pub", "orig"), {"qabf": 0.123, "sd": 0.2},
                       scale={"sd": 255.0}),)
    return Suite(data, methods, (Comparison("rand", "orig"),), criteria, papers, {"mffgan": "a note"})


def table_cell(md: str, metric: str, column: str, header_start: str = "| metric |") -> str:
    """The cell of the first table under the 'Means' heading for ``metric`` and ``column``."""
    section = md[md.index("### Means"):]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if cells[0].startswith(f"`{metric}`"):
            return cells[header.index(f"`{column}`")]
    raise AssertionError(f"no row {metric}")


def grey(path):
    return M.rgb2gray(np.asarray(Image.open(path)))


def test_tiny_report_tables_figures_verdicts_and_cache(tiny, tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    doc = comparison.build_report(tiny_suite(tiny), out, work, workers=1, command="test")
    for name in ("README.md", "report.json", "per_image_tiny.csv", "bars_tiny.png", "crops_tiny.png"):
        assert (out / name).is_file(), name
    assert sum((out / n).stat().st_size for n in doc["files"] if n.endswith(".png")) < 150_000
    md = (out / "README.md").read_text()

    # the published column's mean equals an independent computation on the same files
    a1, b1, a3, b3 = (grey(tiny["sources"] / f"lytro-{n}-{s}.png") for n in ("01", "03") for s in "AB")
    f1, f3 = grey(tiny["published"] / "fused_1.png"), grey(tiny["published"] / "fused_3.png")
    expected = {"qabf": (M.qabf(a1, b1, f1) + M.qabf(a3, b3, f3)) / 2, "en": (M.en(None, None, f1) + M.en(None, None, f3)) / 2}
    for metric, value in expected.items():
        assert table_cell(md, metric, "pub") == f"{value:.4f}"
    rows = list(csv.DictReader(open(out / "per_image_tiny.csv")))
    assert [(r["method"], r["image"]) for r in rows] == [(m, i) for m in ("orig", "rand", "pub")
                                                          for i in ("lytro-01", "lytro-03")]
    assert float(rows[4]["qabf"]) == M.qabf(a1, b1, f1)

    # the models' fused images: the TF1 weights through the port, scored like any image
    from fusion_tf import registry

    srcs = [np.asarray(Image.open(tiny["sources"] / f"lytro-03-{s}.png")) for s in "AB"]
    fused = registry.load_fuser("mffgan", str(tiny["tf1"])).fuse(srcs).fused
    assert float(rows[1]["sd"]) == pytest.approx(M.sd(None, None, M.rgb2gray(fused)), abs=1e-12)

    # verdicts are computed from the means, not typed
    mean = {m: np.mean([float(r["qabf"]) for r in rows if r["method"] == m]) for m in ("orig", "rand", "pub")}
    rel = (mean["rand"] - mean["orig"]) / abs(mean["orig"])
    acc = {v["label"]: v for v in doc["acceptance"]}
    assert acc["rand within 3 % of orig on qabf"]["value"] == pytest.approx(rel, rel=1e-12)
    assert acc["rand within 3 % of orig on qabf"]["verdict"] == ("PASS" if abs(rel) <= 0.03 else "FAIL")
    assert acc["pub qabf at least 0.5"]["verdict"] == ("PASS" if mean["pub"] >= 0.5 else "FAIL")
    assert acc["absent qg at least 0.7"]["verdict"] == "NOT RUN"
    accept = md[md.index("## Acceptance"):md.index("## Methods")]
    line = next(ln for ln in accept.splitlines() if ln.startswith("| rand within"))
    assert f"Δ {rel * 100:+.2f} %" in line and acc["rand within 3 % of orig on qabf"]["verdict"] in line
    assert "NOT RUN (absent: not shipped" in accept
    assert f"{rel * 100:+.2f} %" in md[md.index("### Ours against"):]
    # missing checkpoint listed; printed paper numbers labelled and scaled
    assert "`absent` (not shipped, " in md and "absent.weights.h5 missing" in md
    assert "0.2 (×255 = 51.00)" in md and "paper (printed)" in md
    assert "<details>" in md and "crops_tiny.png" in md and "bars_tiny.png" in md
    assert doc["generated"]["counts"]["fused"] == 4 and doc["generated"]["counts"]["scored"] == 6

    # a re-run takes everything from the cache and reproduces the numbers byte for byte
    before = {n: (out / n).read_bytes() for n in ("per_image_tiny.csv", "bars_tiny.png", "crops_tiny.png")}
    doc2 = comparison.build_report(tiny_suite(tiny), out, work, workers=1, command="test")
    c = doc2["generated"]["counts"]
    assert (c["fused"], c["fused_from_cache"], c["scored"], c["scored_from_cache"]) == (0, 4, 0, 6)
    assert {n: (out / n).read_bytes() for n in before} == before
    assert doc2["acceptance"] == doc["acceptance"]


def test_default_suite_inputs(shared, tmp_path):
    """The real report's plan: every input present, the fixed splits, missing checkpoints = not shipped."""
    from fusion_tf import registry

    p = comparison.plan(default_suite(shared), tmp_path)
    sizes = {s.spec.key: len(s.groups) for s in p.sets}
    assert sizes == {"lytro_test": 10, "grayscale": 10, "grayscale_q75": 10, "gacn26": 26}
    assert list(p.set("lytro_test").groups) == list(LYTRO_TEST) == [f"lytro-{n:02d}" for n in range(1, 20, 2)]
    shipped = set(registry.available_models())
    ours = {m.name for m in p.suite.methods if m.role == "ours"}
    assert set(p.missing) == ours - shipped
    assert "mffgan-original" in p.set("lytro_test").methods and "gacn-published" in p.set("gacn26").methods
    # the q75 sources: JPEG re-encodings of the TIFFs, same size
    q = p.set("grayscale_q75").groups["g_01"][0]
    assert q.suffix == ".jpg" and Image.open(q).size == Image.open(shared / "data" / "grayscale" / "g_01_1.tif").size


def run_cli(argv, capsys):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    rc = command.run(parser.parse_args([str(a) for a in argv]))
    return rc, capsys.readouterr().err


def test_missing_inputs_give_one_line_errors(tiny, tmp_path, capsys):
    out = tmp_path / "out"

    def fails(argv, needle):
        rc, err = run_cli(argv, capsys)
        assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert needle in err, err
        assert not out.exists()

    fails(["--report", "--shared", tmp_path / "nope", "--out", out, "--work", tmp_path / "w"], "--shared")
    fails(["--report", "--sources", tiny["sources"], "--out", out], "drop --sources")
    fails(["--sources", tiny["sources"], "--fused", f"x={tiny['published']}"], "--out is required")
    fails(["--out", out, "--fused", f"x={tiny['published']}"], "--sources is required")

    # a published image missing, an original's weights missing: named, nothing written
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "fused_1.png").write_bytes((tiny["published"] / "fused_1.png").read_bytes())
    with pytest.raises(comparison.InputImageError, match="fused_3.png"):
        comparison.build_report(tiny_suite(tiny, partial), out, tmp_path / "w")
    gone = tiny_suite(tiny)
    gone = Suite(gone.datasets, (Method("orig", "mffgan", "original", model="mffgan", weights=tmp_path / "x.h5"),
                                 *gone.methods[1:]), gone.comparisons, gone.criteria)
    with pytest.raises(comparison.WeightsError, match="orig: weights not found"):
        comparison.build_report(gone, out, tmp_path / "w")
    assert not out.exists()

    # never overwrite a folder that --report did not write
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "notes.md").write_text("mine")
    with pytest.raises(comparison.FusionError, match="not empty"):
        comparison.build_report(tiny_suite(tiny), foreign, tmp_path / "w")
    assert [p.name for p in foreign.iterdir()] == ["notes.md"]
