"""Presets (issue 17): every listed preset resolves, `fusion-tf models` is a truthful table, the
demonstration preset says so on `fuse`, and an imported original reproduces the original's output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusion_tf import presets, registry
from fusion_tf.cli import main
from fusion_tf.errors import FusionError, WeightsError
from fusion_tf.weights.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]
LYTRO_TF1 = "reference/mff_gan/checkpoint/Lytro_model/CGAN.model-19"
GACN_NPZ = "reference/gacn/weights/GACN_state_dict_pytorch_layout.npz"


@pytest.fixture(autouse=True)
def preset_cache(tmp_path, monkeypatch) -> Path:
    """Every test gets an empty presets directory (never the user's ~/.cache)."""
    folder = tmp_path / "presets"
    monkeypatch.setenv("FUSION_TF_PRESETS", str(folder))
    return folder


@pytest.fixture
def crop_pair(tmp_path) -> tuple[str, str]:
    paths = []
    (tmp_path / "pair").mkdir()
    for s in "AB":
        im = np.asarray(Image.open(ROOT / "datasets" / "samples" / f"lytro-01-{s}.jpg"))[220:260, 180:236]
        paths.append(str(tmp_path / "pair" / f"crop-{s}.png"))
        Image.fromarray(im).save(paths[-1])
    return paths[0], paths[1]


def test_every_listed_preset_resolves_or_names_its_import_command():
    for name, p in presets.PRESETS.items():
        if p.origin == "shipped":
            source = resolve(p.model, name)
            assert source.preset == name and source.shipped and source.path == registry.get(p.model).default_weights
            assert source.path.is_file()
        else:
            with pytest.raises(WeightsError) as err:
                resolve(p.model, name)
            text = str(err.value)
            assert "\n" not in text and f"fusion-tf import-weights {p.model} " in text and f"--name {name}" in text


def test_default_weights_are_the_shipped_preset():
    """One source of truth: a model's default file is its shipped preset's file (read from the registry)."""
    for model, entry in registry.MODELS.items():
        default = presets.default_for(model)
        if entry.default_weights is not None and entry.default_weights.is_file():
            assert default is not None and default.file == entry.default_weights
            assert resolve(model).preset == default.name
        else:
            assert default is None  # gipcgan-compact
    shipped = [p for p in presets.PRESETS.values() if p.origin == "shipped"]
    assert len({p.model for p in shipped}) == len(shipped)  # one per model
    assert all(p.kind in presets.KINDS for p in presets.PRESETS.values())


def test_preset_of_another_model_and_unknown_names_are_one_line():
    with pytest.raises(WeightsError, match="preset gacn-original holds gacn weights, not mffgan: use --model gacn"):
        resolve("mffgan", "gacn-original")
    with pytest.raises(WeightsError, match="no preset of that name"):
        resolve("mffgan", "mffgan-original")
    with pytest.raises(WeightsError, match="weights not found"):  # a path stays a path
        resolve("mffgan", "nowhere/generator.weights.h5")


def test_status_agrees_with_the_shipped_logs_and_recipes():
    """The training status printed by `models` is the one in each checkpoint folder."""
    def last_step(model):
        with open(ROOT / "checkpoints" / model / "log.csv", newline="") as fh:
            return int(list(csv.DictReader(fh))[-1]["step"])

    def recipe(model):
        return json.loads((ROOT / "checkpoints" / model / "recipe.json").read_text())

    status = {n: p.status for n, p in presets.PRESETS.items()}
    assert status["mffgan"].startswith(f"{last_step('mffgan'):,} / 13,800 iterations (14 / {recipe('mffgan')['epochs']} epochs)")
    best = json.loads((ROOT / "checkpoints/gacn/best.json").read_text())["epoch"]
    assert status["gacn"].startswith(f"{best} / {recipe('gacn')['epochs']} epochs")
    assert status["gipcgan"].startswith(f"{last_step('gipcgan')} / 570 steps (10 / {recipe('gipcgan')['epochs']} epochs)")
    assert status["mfifgan-demo"] == f"{last_step('mfifgan')} / {recipe('mfifgan')['num_iters']:,} critic iterations — demonstration"


def test_models_table_is_truthful(capsys, monkeypatch):
    # parameter counts are tested with real networks in test_cli / test_mfifgan_model; fake them here (fast)
    monkeypatch.setattr(registry, "parameter_counts",
                        lambda name: [(registry.get(name).checkpoint_key, 1234, 5), ("discriminator", 99, 0)])
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert not [line for line in lines if "discriminator" in line and ("shipped" in line or "yes" in line)]
    block = out[out.index("\nmfifgan-demo "):]
    assert "59 / 120,000 critic iterations — demonstration" in block and "qabf 0.7583" in block
    assert "mffgan-original-lytro" in out and "not imported: fusion-tf import-weights mffgan" in out
    assert "default weights: none shipped" in out  # gipcgan-compact
    for name, p in presets.PRESETS.items():
        assert any(line.startswith(f"{name} ") for line in lines)
        if p.origin == "shipped":
            assert f"shipped, card {p.card}" in out


def test_every_shipped_preset_has_a_model_card_with_its_facts():
    report = presets.load_report()
    for p in presets.PRESETS.values():
        if p.origin != "shipped":
            continue
        card = (ROOT / p.card).read_text(encoding="utf-8")
        assert p.card == f"checkpoints/{p.model}/MODEL_CARD.md"
        assert f"`{p.name}`" in card and p.status in card
        s = p.score
        value = report["sets"][s.dataset]["summary"][s.method]["metrics"][s.metric]["mean"]
        assert f"{value:.4f}" in card  # the headline number is the measured one
        assert "python evaluate.py --report" in card


def test_demonstration_preset_prints_its_note_and_quiet_silences_it(crop_pair, tmp_path, capsys, monkeypatch):
    """The command's wiring with the real resolver; the network is stubbed (a real mfifgan fuse of the
    shipped weights runs in test_user_paths; building its 13.7 M parameters twice here would take 14 s)."""
    from types import SimpleNamespace

    from fusion_tf import api, batch
    from fusion_tf.weights.resolve import resolve as real_resolve

    def load_fuser(model, weights=None, **options):
        return SimpleNamespace(weights_source=real_resolve(model, weights), name=model)

    monkeypatch.setattr(api, "load_fuser", load_fuser)
    from fusion_tf.inference.base import FusionResult

    monkeypatch.setattr(api, "fuse", lambda sources, fuser, **kw: FusionResult(fused=np.zeros((40, 56, 3), np.uint8)))
    out = tmp_path / "f.png"
    note = "note: mfifgan-demo weights are a pipeline demonstration (59 / 120,000 critic iterations), not a trained model"
    assert main(["fuse", "--model", "mfifgan", *crop_pair, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(note) and err.count("\n") == 1
    assert main(["fuse", "--model", "mfifgan", "--weights", "mfifgan-demo", "--quiet", *crop_pair, "-o", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["fuse", *crop_pair, "-o", str(out)]) == 0  # mffgan: a partial, validated run prints nothing
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(batch, "fuse_batch", lambda *a, **k: [])
    folder = Path(crop_pair[0]).parent
    assert main(["fuse", "--model", "mfifgan", "--batch", str(folder), "-o", str(tmp_path / "batch")]) == 0
    assert capsys.readouterr().err.startswith(note)


def test_partial_runs_print_no_note():
    """MFF-GAN (9,660 / 13,800, within 3 % of the original) and GACN are partial but validated: no note."""
    assert [n for n, p in presets.PRESETS.items() if p.note] == ["mfifgan-demo"]
    assert presets.note_for(resolve("mffgan")) is None and presets.note_for(resolve("mfifgan")) is not None


def test_import_is_atomic_and_checks_its_name(tmp_path, preset_cache, monkeypatch):
    from fusion_tf.weights import resolve as R

    npz = tmp_path / "released.npz"
    np.savez(npz, w=np.zeros(3, np.float32))

    class Net:
        def save_weights(self, path):
            Path(path).write_bytes(b"weights")

    monkeypatch.setattr(R, "load_network", lambda model, source: (Net(), source))
    monkeypatch.setattr(presets, "weights_digest", lambda path: (_ for _ in ()).throw(RuntimeError("disk gone")))
    with pytest.raises(RuntimeError):
        presets.import_weights("gacn", npz, "gacn-original")
    assert not preset_cache.exists() or not any(preset_cache.iterdir())  # nothing half-written
    monkeypatch.setattr(presets, "weights_digest", lambda path: "d" * 64)
    meta = presets.import_weights("gacn", npz, "gacn-original")
    assert meta["source_sha256"] == "d" * 64 and json.loads((preset_cache / "gacn-original/preset.json").read_text()) == meta
    assert resolve("gacn", "gacn-original").path == preset_cache / "gacn-original" / "gacn.weights.h5"
    assert [p.name for p in preset_cache.iterdir()] == ["gacn-original"]
    with pytest.raises(FusionError, match="already imported"):
        presets.import_weights("gacn", npz, "gacn-original")
    presets.import_weights("gacn", npz, "gacn-original", force=True)
    assert [p.name for p in preset_cache.iterdir()] == ["gacn-original"]
    for bad, why in [("mffgan", "model name"), ("gacn", "model name"), ("Bad Name", "lower-case"),
                     ("mfifgan-demo", "shipped preset"), ("mffgan-original-lytro", "holds mffgan weights")]:
        with pytest.raises(FusionError, match=why):
            presets.import_weights("gacn", npz, bad)
    # a name of the user's own is listed and usable
    presets.import_weights("gacn", npz, "my-gacn")
    assert "my-gacn" in presets.all_presets() and resolve("gacn", "my-gacn").preset == "my-gacn"


def test_imported_original_mffgan_reproduces_the_original_output(shared, tmp_path, capsys, preset_cache):
    """import-weights once, then `--weights mffgan-original-lytro` gives the original's raw output."""
    ref = shared / "reference/mff_gan"
    assert main(["import-weights", "mffgan", str(shared / LYTRO_TF1), "--name", "mffgan-original-lytro"]) == 0
    assert "as preset mffgan-original-lytro" in capsys.readouterr().out
    meta = json.loads((preset_cache / "mffgan-original-lytro/preset.json").read_text())
    report = presets.load_report()
    assert meta["source_sha256"] == report["methods"]["mffgan-original"]["sha256"]  # the report's digest
    out, raw = tmp_path / "f.png", tmp_path / "raw.npy"
    assert main(["fuse", "--weights", "mffgan-original-lytro", str(ref / "inputs/near/2.jpg"),
                 str(ref / "inputs/far/2.jpg"), "-o", str(out), "--save-raw", str(raw)]) == 0
    assert capsys.readouterr().err == ""  # released weights: no note
    expected = np.load(ref / "expected/Lytro_model_fused_tanh.npz")["fused_tanh_2"]
    assert np.abs(np.load(raw) - expected).max() <= 1e-5
    import fusion_tf

    fuser = fusion_tf.load_fuser("mffgan-original-lytro")  # a preset name as the model (Python API)
    assert fuser.weights_source.preset == "mffgan-original-lytro"


def test_imported_gacn_npz_holds_the_same_weights(shared, preset_cache):
    from fusion_tf.weights.resolve import load_network

    presets.import_weights("gacn", shared / GACN_NPZ, "gacn-original")
    direct, _ = load_network("gacn", str(shared / GACN_NPZ))
    imported, source = load_network("gacn", "gacn-original")
    assert source.preset == "gacn-original" and source.kind == "keras"
    for a, b in zip(direct.get_weights(), imported.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
