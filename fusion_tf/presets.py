"""Presets: named sets of weights, one per model and training run, with what is known about each.

A preset name works wherever weights are accepted (``--weights NAME`` of ``fuse``, ``evaluate``,
``export``; ``fusion_tf.load_fuser(NAME)``); :mod:`fusion_tf.weights.resolve` turns it into a file.

Two origins:

``shipped``   trained by this project; the file is the model's ``default_weights`` in the registry
              (one source of truth: the table below never repeats a path), so a model's default
              weights *are* its shipped preset.  Each has a ``checkpoints/<model>/MODEL_CARD.md``.
``original``  the weights the original authors released.  Nothing is downloaded: the user converts
              their copy once with ``fusion-tf import-weights MODEL PATH --name NAME``, which writes
              ``<presets dir>/NAME/<network>.weights.h5`` plus ``preset.json`` (source path, format,
              source digest — the digest the comparison report prints — and the file's sha256).

``import-weights`` also accepts a name of the user's own (e.g. a MFIF-GAN ``G.npz`` someone trained);
such presets are listed from the cache.  The presets directory is ``$FUSION_TF_PRESETS``, else
``$FUSION_TF_CACHE/presets``, else ``~/.cache/fusion_tf/presets``.

Training status kinds (``Preset.kind``):

=================  ===============================================================================
``released``       the original authors' released weights
``partial``        part of the original recipe ran; validated against the original's weights
``reduced``        the whole schedule ran on reduced data; nothing published to compare with
``demonstration``  a small fraction of the recipe, to show the pipeline works; not for real use
=================  ===============================================================================

``fuse`` prints a preset's ``note`` (one stderr line, ``--quiet`` silences it); only the
demonstration has one.  A partial run that passes the acceptance comparison with the original (MFF-GAN
at 9,660 of 13,800 iterations, GACN at 10 of 50 epochs) is a usable result, and its status is in
``fusion-tf models`` and its card instead of on every run.

No TensorFlow here: resolving a name stays cheap.  ``python -m fusion_tf.presets`` prints the table.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fusion_tf.errors import FusionError, WeightsError
from fusion_tf.paths import REPO_ROOT, file_sha256

SIDECAR = "preset.json"
REPORT_JSON = REPO_ROOT / "docs" / "results" / "report.json"
REPORT_COMMAND = "python evaluate.py --report"
SET_NAMES = {"lytro_test": "the 10 Lytro test pairs", "grayscale": "the grayscale set", "gacn26": "GACN's 26 test pairs"}
KINDS = ("released", "partial", "reduced", "demonstration")


@dataclass(frozen=True)
class Score:
    """A headline number of the comparison report (``docs/results/report.json``), read when shown."""

    dataset: str  # a set id of the report
    metric: str
    method: str  # the report's column for these weights
    reference: str | None = None  # the column compared with


@dataclass(frozen=True)
class Preset:
    name: str
    model: str
    origin: str  # "shipped" | "original" | "user"
    kind: str  # see the module table; "" for a user's own import
    description: str
    status: str  # how much of the recipe ran, e.g. "59 / 120,000 critic iterations — demonstration"
    score: Score | None = None
    fact: str = ""  # a measured fact beside (or instead of) the score, with where it is tested
    card: str | None = None  # repo-relative
    source_hint: str | None = None  # original: the released file, as named in the original repository
    note: str | None = None  # the line ``fuse`` prints

    @property
    def file(self) -> Path:
        """Where the weights are: the registry's default for shipped presets, the cache for imports."""
        from fusion_tf import registry

        if self.origin == "shipped":
            return registry.get(self.model).default_weights
        return presets_dir() / self.name / f"{registry.get(self.model).checkpoint_key}.weights.h5"

    @property
    def available(self) -> bool:
        if self.origin == "shipped":
            return self.file.is_file()
        return (presets_dir() / self.name / SIDECAR).is_file() and self.file.is_file()

    def import_command(self) -> str:
        return f"fusion-tf import-weights {self.model} {self.source_hint or 'PATH'} --name {self.name}"


_MFFGAN_REPO = "…/MFF-GAN/checkpoint"
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("mffgan", "mffgan", "shipped", "partial",
           "MFF-GAN trained by fusion_tf on the original Lytro recipe, the 10 even Lytro pairs",
           "9,660 / 13,800 iterations (14 / 20 epochs) — partial run, within 3 % of the original",
           Score("lytro_test", "qabf", "mffgan", "mffgan-original"),
           card="checkpoints/mffgan/MODEL_CARD.md"),
    Preset("mffgan-original-lytro", "mffgan", "original", "released",
           "MFF-GAN as released by its authors: Lytro_model (TF1 checkpoint)",
           "released by the authors (Lytro_model, 20 epochs)",
           Score("lytro_test", "qabf", "mffgan-original"),
           fact="raw output within 1.1e-6 of the original TF1 code (tests/test_mffgan_model.py)",
           source_hint=f"{_MFFGAN_REPO}/Lytro_model/CGAN.model-19"),
    Preset("mffgan-original-mfiwhu", "mffgan", "original", "released",
           "MFF-GAN as released by its authors: MFI-WHU_model (TF1 checkpoint)",
           "released by the authors (MFI-WHU_model)",
           fact="raw output within 1.1e-6 of the original TF1 code (tests/test_mffgan_model.py); not in the report",
           source_hint=f"{_MFFGAN_REPO}/MFI-WHU_model/CGAN.model-19"),
    Preset("gacn", "gacn", "shipped", "partial",
           "GACN trained by fusion_tf on the Dice + Qg recipe, MFI-WHU substitute data",
           "10 / 50 epochs (best validation epoch of a run stopped after 11) — partial run",
           Score("gacn26", "qg_toolbox", "gacn", "gacn-original"),
           card="checkpoints/gacn/MODEL_CARD.md"),
    Preset("gacn-original", "gacn", "original", "released",
           "GACN as released by its authors (PyTorch state dict as npz)",
           "released by the authors (GACN.pkl)",
           Score("gacn26", "qg_toolbox", "gacn-original"),
           fact="reproduces the 26 published results within ±2 grey levels on ≥ 99.99 % of pixels (tests/test_gacn_inference.py)",
           source_hint="…/GACN_state_dict_pytorch_layout.npz"),
    Preset("gipcgan", "gipcgan", "shipped", "reduced",
           "GIPC-GAN (paper variant) trained by fusion_tf: the paper's schedule on reduced substitute data",
           "570 / 570 steps (10 / 10 epochs) on 1,846 of the paper's 184,885 patches — reduced data",
           Score("lytro_test", "qabf", "gipcgan"),
           fact="no published weights or numbers to compare with",
           card="checkpoints/gipcgan/MODEL_CARD.md"),
    Preset("mfifgan-demo", "mfifgan", "shipped", "demonstration",
           "MFIF-GAN trained by fusion_tf for 59 critic iterations: a pipeline demonstration",
           "59 / 120,000 critic iterations — demonstration",
           Score("lytro_test", "qabf", "mfifgan", "mfifgan-published"),
           card="checkpoints/mfifgan/MODEL_CARD.md",
           note="mfifgan-demo weights are a pipeline demonstration (59 / 120,000 critic iterations), "
                "not a trained model: see checkpoints/mfifgan/MODEL_CARD.md"),
)}


# ------------------------------------------------------------------------------------------------
# lookup
# ------------------------------------------------------------------------------------------------
def presets_dir() -> Path:
    """``$FUSION_TF_PRESETS``, else ``$FUSION_TF_CACHE/presets``, else ``~/.cache/fusion_tf/presets``."""
    if os.environ.get("FUSION_TF_PRESETS"):
        return Path(os.environ["FUSION_TF_PRESETS"]).expanduser()
    cache = os.environ.get("FUSION_TF_CACHE") or Path.home() / ".cache" / "fusion_tf"
    return Path(cache).expanduser() / "presets"


def read_sidecar(name: str) -> dict | None:
    """The ``preset.json`` of an imported preset, or None when there is none (or it is unreadable)."""
    path = presets_dir() / name / SIDECAR
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _user_preset(name: str, meta: dict) -> Preset:
    return Preset(name, meta["model"], "user", "", f"imported by the user from {meta.get('source', '?')}",
                  f"imported {meta.get('imported_utc', '')[:10]} ({meta.get('source_format', '?')}); status unknown",
                  fact=f"source sha256 {str(meta.get('source_sha256', ''))[:12]}")


def find(name: str) -> Preset | None:
    """The preset called ``name``: a built-in one, or one the user imported under a name of their own."""
    if name in PRESETS:
        return PRESETS[name]
    if not NAME_RE.fullmatch(name):
        return None
    meta = read_sidecar(name)
    if meta and meta.get("name") == name and isinstance(meta.get("model"), str):
        return _user_preset(name, meta)
    return None


def get(name: str) -> Preset:
    preset = find(name)
    if preset is None:
        raise WeightsError(f"unknown preset {name!r}; presets: {', '.join(all_presets())}")
    return preset


def default_for(model: str) -> Preset | None:
    """The shipped preset of ``model`` (its default weights), if it has one."""
    return next((p for p in PRESETS.values() if p.model == model and p.origin == "shipped"), None)


def imported_names() -> list[str]:
    root = presets_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / SIDECAR).is_file() and NAME_RE.fullmatch(p.name))


def all_presets() -> dict[str, Preset]:
    """Built-in presets, then the user's own imports."""
    out = dict(PRESETS)
    for name in imported_names():
        if name not in out and (p := find(name)) is not None:
            out[name] = p
    return out


def note_for(source) -> str | None:
    """The line ``fuse`` prints for a resolved :class:`~fusion_tf.weights.resolve.WeightsSource`."""
    name = getattr(source, "preset", None)
    preset = find(name) if name else None
    return preset.note if preset else None


# ------------------------------------------------------------------------------------------------
# headline scores (from the comparison report)
# ------------------------------------------------------------------------------------------------
def load_report() -> dict | None:
    try:
        return json.loads(REPORT_JSON.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def weights_digest(path) -> str:
    """The digest the comparison report prints for a weights argument (all files of a checkpoint)."""
    from fusion_tf.evaluation.comparison import weights_digest as digest

    return digest(Path(path))


def headline(preset: Preset, report: dict | None = None, check_digest: bool = True) -> str:
    """``qabf 0.6844 on the 10 Lytro test pairs vs mffgan-original 0.6798 (+0.67 %), python evaluate.py
    --report``: the preset's headline number from the comparison report, and its measured ``fact``.

    ``check_digest``: say so when the report measured other weights than the preset's current file.
    """
    parts = []
    score = preset.score
    report = report if report is not None else (load_report() if score else None)
    if score and report:
        try:
            summary = report["sets"][score.dataset]["summary"]
            value = summary[score.method]["metrics"][score.metric]["mean"]
        except (KeyError, TypeError):
            value = None
        if value is not None:
            text = f"{score.metric} {value:.4f} on {SET_NAMES.get(score.dataset, score.dataset)}"
            ref = (summary.get(score.reference, {}).get("metrics", {}).get(score.metric, {}).get("mean")
                   if score.reference else None)
            if ref:
                text += f" vs {score.reference} {ref:.4f} ({(value - ref) / ref * 100:+.2f} %)"
            if check_digest and preset.available:
                measured = report.get("methods", {}).get(score.method, {}).get("sha256")
                ours = _current_digest(preset)
                if measured and ours and measured != ours:
                    text += f" [measured on other weights: rerun {REPORT_COMMAND}]"
            parts.append(text + f", {REPORT_COMMAND}")
    if preset.fact:
        parts.append(preset.fact)
    return "; ".join(parts) or "not measured"


def _current_digest(preset: Preset) -> str | None:
    if preset.origin == "shipped":
        return weights_digest(preset.file)
    meta = read_sidecar(preset.name) or {}
    return meta.get("source_sha256")


# ------------------------------------------------------------------------------------------------
# import-weights
# ------------------------------------------------------------------------------------------------
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def check_import_name(model: str, name: str) -> Preset | None:
    """One line if ``name`` cannot hold imported ``model`` weights; the built-in preset it fills, if any."""
    from fusion_tf import registry

    if not NAME_RE.fullmatch(name):
        raise FusionError(f"--name {name!r}: use lower-case letters, digits, '.', '_' and '-' (at most 64)")
    if name in registry.MODELS:
        raise FusionError(f"--name {name}: that is a model name; choose another (e.g. {name}-original)")
    known = PRESETS.get(name)
    if known is not None and known.origin == "shipped":
        raise FusionError(f"--name {name}: that is the shipped preset of {known.model}; choose another")
    if known is not None and known.model != model:
        raise FusionError(f"--name {name}: that preset holds {known.model} weights, not {model}")
    return known


def import_weights(model: str, path: str | os.PathLike, name: str, force: bool = False) -> dict:
    """Convert foreign weights (an original's release) of ``model`` into preset ``name``; its sidecar.

    The network is loaded through the same importer as ``--weights PATH`` (so the preset gives the
    same output), saved as this project's ``.weights.h5`` in a temporary folder beside the
    destination, and renamed into place only once the file and ``preset.json`` are complete.
    """
    from fusion_tf import __version__, registry
    from fusion_tf.weights.resolve import KIND_NAMES, OWN_KINDS, WeightsSource, identify, load_network

    entry = registry.get(model)
    check_import_name(model, name)
    kind = identify(path)
    if kind in OWN_KINDS:
        raise WeightsError(f"{path} is {KIND_NAMES[kind]}, already this project's format: pass it to --weights "
                           "as it is (import-weights converts an original's release)")
    if kind not in entry.importers:
        raise WeightsError(f"{path} is {KIND_NAMES[kind]}, which {model} cannot load (it takes: {entry.weights_help})")
    root = presets_dir()
    dest = root / name
    if dest.exists() and not force:
        meta = read_sidecar(name) or {}
        raise FusionError(f"preset {name} is already imported (from {meta.get('source', '?')}); "
                          "--force replaces it")
    network, _ = load_network(model, WeightsSource(Path(path), kind))
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        weights = tmp / f"{entry.checkpoint_key}.weights.h5"
        network.save_weights(str(weights))
        meta = {
            "name": name, "model": model, "format": "keras .weights.h5",
            "weights_file": weights.name, "weights_sha256": file_sha256(weights),
            "weights_bytes": weights.stat().st_size,
            "source": str(Path(path).resolve()), "source_format": kind,
            "source_sha256": weights_digest(path),
            "source_digest_rule": "sha256 over [(file name, sha256 of the file)] of every file of the checkpoint "
                                  "(the comparison report's sha256 column)",
            "fusion_tf_version": __version__,
            "imported_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        with open(tmp / SIDECAR, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        old = None
        if dest.exists():
            old = root / f".{name}.replaced.{os.getpid()}"
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def check_imported(preset: Preset) -> Path:
    """The weights file of an imported preset, or one line saying what is missing."""
    meta = read_sidecar(preset.name)
    if meta is None:
        raise WeightsError(f"preset {preset.name} is not imported yet: run once `{preset.import_command()}` "
                           "(the original's released file; nothing is downloaded)")
    path = preset.file
    if not path.is_file() or path.stat().st_size != meta.get("weights_bytes", path.stat().st_size):
        raise WeightsError(f"preset {preset.name} in {presets_dir()} is damaged: import it again with --force")
    return path


def _table() -> str:
    lines = []
    for p in all_presets().values():
        lines.append(f"{p.name:<24} {p.model:<8} {'available' if p.available else 'not imported':<13} {p.status}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table())
