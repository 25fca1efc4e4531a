"""``evaluate --report``: fuse the test sets with every shipped model and the originals' weights,
gather the published result images, score everything and write a Markdown report with tables,
acceptance verdicts and figures.

What is compared lives in :mod:`fusion_tf.evaluation.suite`; this module only executes a suite:

1. **plan** — check every input before any work (sources, published images, original weights,
   image sizes); shipped checkpoints that are absent are listed, not fatal.
2. **fuse** — models run through :func:`runner.run_models` (one fuser load per method); results are
   cached in the work folder under a key of the code, TensorFlow version, weights and sources
   (SHA-256), so a re-run fuses only what changed.
3. **score** — :func:`runner.run_jobs` over worker processes; values cached per (metrics code,
   sources, fused image), so re-runs are quick and identical.
4. **write** — ``README.md``, ``report.json``, ``per_image_<set>.csv`` and PNG figures, built in a
   temporary folder and moved into ``--out`` only after success.

Every number in the report is computed by the run, except the papers' printed values, which are
labelled as such.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from fusion_tf import metrics as M
from fusion_tf.core.imageio import read_image, write_image
from fusion_tf.errors import FusionError, InputImageError, WeightsError
from fusion_tf.paths import REPO_ROOT

from . import grouping, plots, report, runner
from .suite import Dataset, Method, Suite, default_suite

__all__ = ["DEFAULT_SHARED", "DEFAULT_OUT", "DEFAULT_WORK", "Plan", "plan", "build_report", "run_report",
           "MARKER"]

DEFAULT_SHARED = REPO_ROOT.parent / "shared"
DEFAULT_OUT = REPO_ROOT / "docs" / "results"
DEFAULT_WORK = REPO_ROOT / "results" / "report_work"
#: the file that marks a folder as written by --report (and lists the files it owns)
MARKER = "report.json"
#: the paths whose uncommitted changes could change the report's numbers (flagged in the report)
RESULT_PATHS = ("fusion_tf/inference", "fusion_tf/models", "fusion_tf/core", "fusion_tf/weights",
                "fusion_tf/metrics", "fusion_tf/evaluation", "fusion_tf/registry.py")
CROP = 96


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# digests (cache keys)
# ------------------------------------------------------------------------------------------------
def _sha(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path) -> str:
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return _FILE_DIGESTS[key]


def weights_files(path: Path | None) -> list[Path]:
    """The files a weights argument stands for: a file, a run folder's files, or a TF1 prefix's."""
    if path is None:
        return []
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return sorted(p for p in path.parent.glob(path.name + ".*") if p.is_file())


def weights_digest(path: Path) -> str:
    return _sha([(p.name, file_digest(p)) for p in weights_files(path)])


def code_digest(*subpackages: str) -> str:
    """Digest of the package's source files that determine a result (cache invalidation)."""
    root = Path(__file__).resolve().parents[1]
    files = []
    for sub in subpackages:
        target = root / sub
        files += [target] if target.is_file() else sorted(target.rglob("*.py"))
    return _sha([(str(f.relative_to(root)), hashlib.sha256(f.read_bytes()).hexdigest()) for f in files])


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


# ------------------------------------------------------------------------------------------------
# plan: resolve and check every input
# ------------------------------------------------------------------------------------------------
@dataclass
class PlannedSet:
    spec: Dataset
    groups: dict[str, list[Path]]  # image -> source paths (possibly re-encoded copies)
    methods: list[str]  # present, in column order
    missing: list[str]
    published: dict[str, dict[str, Path]]  # method -> image -> file


@dataclass
class Plan:
    suite: Suite
    work: Path
    sets: list[PlannedSet]
    missing: dict[str, str]  # method -> why it is not evaluated
    digests: dict[str, str] = field(default_factory=dict)  # method -> weights / folder digest

    def set(self, key: str) -> PlannedSet:
        return next(s for s in self.sets if s.spec.key == key)


def _display(path) -> str:
    """A path as the report shows it: relative to the checkout when near it, never machine-specific."""
    p = Path(path).resolve()
    for base, prefix in ((REPO_ROOT, ""), (REPO_ROOT.parent, "../")):
        try:
            return prefix + str(p.relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def _resolve_method(m: Method) -> str | None:
    """None when the method can run, else why it is absent (optional weights); errors otherwise."""
    if m.role == "published":
        if m.folder is None or not Path(m.folder).is_dir():
            raise InputImageError(f"{m.name}: published results folder not found: {m.folder}")
        return None
    from fusion_tf import registry

    registry.get(m.model)  # unknown model: FusionError
    if not weights_files(m.weights):
        if m.optional:
            return ("no default weights in the registry" if m.weights is None
                    else f"not shipped, {_display(m.weights)} missing")
        raise WeightsError(f"{m.name}: weights not found: {m.weights}")
    return None


def _reencode(spec: Dataset, groups: dict[str, list[Path]], work: Path) -> dict[str, list[Path]]:
    """JPEG copies of the sources (deterministic: same pixels and encoder give the same bytes)."""
    folder = work / "sources" / f"{spec.key}-q{spec.jpeg_quality}"
    out = {}
    for image, paths in groups.items():
        new = []
        for p in paths:
            target = folder / f"{p.stem}.jpg"
            if not target.is_file():
                write_image(target, read_image(p, depth=8), quality=spec.jpeg_quality)
            new.append(target)
        out[image] = new
    return out


def plan(suite: Suite, work) -> Plan:
    """Check every input and decide what runs; raises a :class:`FusionError` naming the first problem."""
    work = Path(work)
    names = [m.name for m in suite.methods]
    if len(set(names)) != len(names):
        raise FusionError("suite: method names must be unique")
    missing = {}
    for m in suite.methods:
        reason = _resolve_method(m)
        if reason:
            missing[m.name] = reason
    sets = []
    for spec in suite.datasets:
        unknown = [n for n in spec.methods if n not in names]
        if unknown:
            raise FusionError(f"{spec.key}: unknown method {unknown[0]!r}")
        if not Path(spec.sources).is_dir():
            raise InputImageError(f"{spec.key}: sources folder not found: {spec.sources}")
        groups = grouping.source_groups(spec.sources)
        if spec.images is not None:
            absent = [i for i in spec.images if i not in groups]
            if absent:
                raise InputImageError(f"{spec.key}: no sources for {absent[0]!r} in {spec.sources}")
            groups = {i: groups[i] for i in spec.images}
        bad = [i for i, p in groups.items() if len(p) != 2]
        if bad:
            raise InputImageError(f"{spec.key}: {bad[0]!r} has {len(groups[bad[0]])} sources; the report needs pairs")
        present = [n for n in spec.methods if n not in missing]
        published = {}
        for n in present:
            m = suite.method(n)
            if m.role == "published":
                files = {i: Path(m.folder) / m.file_for(i) for i in groups}
                lost = [f for f in files.values() if not f.is_file()]
                if lost:
                    raise InputImageError(f"{n}: published result not found: {lost[0]}")
                published[n] = files
        runner.check_sizes(groups, published)
        if spec.jpeg_quality:
            groups = _reencode(spec, groups, work)
        sets.append(PlannedSet(spec, groups, present, [n for n in spec.methods if n in missing], published))
    digests = {}
    for m in suite.methods:
        if m.name in missing:
            continue
        if m.role == "published":
            used = {f for s in sets for f in s.published.get(m.name, {}).values()}
            digests[m.name] = _sha(sorted((f.name, file_digest(f)) for f in used))
        else:
            digests[m.name] = weights_digest(m.weights)
    return Plan(suite, work, sets, missing, digests)


# ------------------------------------------------------------------------------------------------
# fuse and score, with caches
# ------------------------------------------------------------------------------------------------
@dataclass
class Counts:
    fused: int = 0
    fused_cached: int = 0
    scored: int = 0
    scored_cached: int = 0
    fuse_s: float = 0.0
    score_s: float = 0.0


def _fuse_all(p: Plan, counts: Counts, progress) -> dict[str, dict[str, dict[str, Path]]]:
    """``{set: {method: {image: fused file}}}`` for the model methods, fusing only cache misses."""
    from fusion_tf import registry

    code = code_digest("inference", "models", "core", "weights", "registry.py")
    tf_version = _version("tensorflow")
    out: dict[str, dict[str, dict[str, Path]]] = {s.spec.key: {} for s in p.sets}
    for m in p.suite.methods:
        if m.role == "published" or m.name in p.missing:
            continue
        fuser = {}

        def load(name, weights, _m=m):  # one load per method, shared by all sets
            if "f" not in fuser:
                _log(f"loading {_m.name} ({_m.model}, weights {_display(_m.weights)})")
                fuser["f"] = registry.load_fuser(_m.model, str(_m.weights))
            return fuser["f"]

        for s in p.sets:
            if m.name not in s.methods:
                continue
            paths, todo = {}, {}
            for image, srcs in s.groups.items():
                key = _sha("fuse", code, tf_version, m.model, p.digests[m.name], [file_digest(x) for x in srcs])
                paths[image] = p.work / "fused" / m.name / f"{image}-{key[:16]}.png"
                if not paths[image].is_file():
                    todo[image] = srcs
            counts.fused_cached += len(paths) - len(todo)
            if todo:
                _log(f"fusing {len(todo)} {s.spec.key} pair(s) with {m.name}")
                t0 = time.perf_counter()
                tmp = Path(tempfile.mkdtemp(prefix=".fuse-", dir=p.work))
                try:
                    jobs = runner.run_models([(m.name, m.model, str(m.weights))], todo, tmp, load_fuser=load, progress=progress)
                    for job in jobs:
                        paths[job.image].parent.mkdir(parents=True, exist_ok=True)
                        os.replace(job.fused, paths[job.image])
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                counts.fused += len(todo)
                counts.fuse_s += time.perf_counter() - t0
            out[s.spec.key][m.name] = paths
    return out


def _score_all(p: Plan, fused: dict, workers, counts: Counts, progress) -> dict[str, list[dict]]:
    """Per set, the records (method, image, metric values) in column × image order."""
    code = code_digest("metrics", "evaluation/runner.py")
    records = {}
    for s in p.sets:
        ids = list(s.spec.metrics)
        jobs, cached, keys = [], {}, {}
        for n in s.methods:
            files = s.published.get(n) or fused[s.spec.key][n]
            for image, srcs in s.groups.items():
                key = _sha("score", code, [file_digest(x) for x in srcs], file_digest(files[image]))
                path = p.work / "scores" / key[:2] / f"{key}.json"
                keys[(n, image)] = path
                values = json.loads(path.read_text()) if path.is_file() else {}
                if all(i in values for i in ids):
                    cached[(n, image)] = values
                else:
                    jobs.append(runner.Job(n, image, tuple(map(str, srcs)), str(files[image])))
        counts.scored_cached += len(cached)
        if jobs:
            _log(f"scoring {len(jobs)} {s.spec.key} image(s) with {len(ids)} metrics")
            t0 = time.perf_counter()
            for rec in runner.run_jobs(jobs, ids, workers=workers, progress=progress):
                path = keys[(rec["method"], rec["image"])]
                old = json.loads(path.read_text()) if path.is_file() else {}
                values = {**old, **{i: rec[i] for i in ids}}
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(values, sort_keys=True))
                os.replace(tmp, path)
                cached[(rec["method"], rec["image"])] = values
            counts.scored += len(jobs)
            counts.score_s += time.perf_counter() - t0
        records[s.spec.key] = [{"method": n, "image": image, **{i: cached[(n, image)][i] for i in ids},
                                "seconds": None}
                               for n in s.methods for image in s.groups]
    return records


# ------------------------------------------------------------------------------------------------
# derived numbers
# ------------------------------------------------------------------------------------------------
def relative(ours: float, ref: float) -> float:
    """(ours − reference) / |reference|."""
    return (ours - ref) / abs(ref) if ref != 0 else float("nan")


def evaluate_criteria(p: Plan, summaries: dict) -> list[dict]:
    """Each acceptance criterion with its computed value and verdict (PASS, FAIL or NOT RUN)."""
    rows = []
    for c in p.suite.criteria:
        row = {"label": c.label, "dataset": c.dataset, "method": c.method, "metric": c.metric, "kind": c.kind,
               "threshold": c.threshold, "reference": c.reference, "value": None, "ours": None, "ref": None}
        absent = [n for n in (c.method, c.reference) if n and n in p.missing]
        s = summaries.get(c.dataset, {})
        if absent:
            row["verdict"] = "NOT RUN"
            row["why"] = f"{absent[0]}: {p.missing[absent[0]]}"
        elif c.method not in s or (c.reference and c.reference not in s):
            row["verdict"] = "NOT RUN"
            row["why"] = f"not part of the {c.dataset} set"
        else:
            ours = s[c.method]["metrics"][c.metric]["mean"]
            row["ours"] = ours
            if c.kind == "within":
                ref = s[c.reference]["metrics"][c.metric]["mean"]
                row["ref"] = ref
                row["value"] = relative(ours, ref)
                ok = abs(row["value"]) <= c.threshold
            elif c.kind == "at_least":
                row["value"] = ours
                ok = ours >= c.threshold
            else:
                raise FusionError(f"unknown criterion kind {c.kind!r}")
            row["verdict"] = "PASS" if ok else "FAIL"
        rows.append(row)
    return rows


def checkpoint_state(weights: Path | None) -> str:
    """How far a shipped checkpoint was trained, read from the files beside it (log.csv, recipe.json)."""
    if weights is None:
        return ""
    folder = Path(weights) if Path(weights).is_dir() else Path(weights).parent
    bits = []
    log = folder / "log.csv"
    if log.is_file():
        try:
            with open(log, newline="") as fh:
                rows = list(csv.reader(fh))
            bits.append(f"{int(float(rows[-1][0])):,} training steps logged")
        except (OSError, ValueError, IndexError):
            pass
    recipe = folder / "recipe.json"
    if recipe.is_file():
        try:
            r = json.loads(recipe.read_text())
        except (OSError, ValueError):
            r = {}
        for k in ("epochs", "max_steps", "steps", "iterations"):
            if isinstance(r.get(k), (int, float)):
                bits.append(f"recipe {k.replace('_', ' ')}: {r[k]:,}")
    return "; ".join(bits)


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------
def _f(v, digits: int = 4) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v * 100:+.2f} %"


def _arrow(metric: str) -> str:
    return (" ↑" if M.INFO[metric].higher_is_better else " ↓") if metric in M.INFO else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def _crop_rows(p: Plan, s: PlannedSet, fused: dict) -> tuple[list, list[str]]:
    """Figure rows and, for the caption, where each crop was taken."""
    rows, where = [], []
    for image in s.spec.crops:
        if image not in s.groups:
            continue
        a, b = (M.as_gray(read_image(x, depth=8)) for x in s.groups[image])
        y, x = plots.crop_window(a, b, CROP)

        def cut(g, y=y, x=x):
            return np.clip(g[y:y + CROP, x:x + CROP], 0, 255).astype(np.uint8)

        panels = [("A", cut(a)), ("B", cut(b))]
        for n in s.methods:
            f = s.published.get(n, {}).get(image) or fused[s.spec.key][n][image]
            panels.append((n, cut(M.as_gray(read_image(f, depth=8)))))
        rows.append((image, panels))
        where.append(f"{image} at x = {x}, y = {y}")
    return rows, where


def _provenance(started: float, load_start, counts: Counts, command: str) -> dict:
    def git(*args):
        try:
            r = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
            return r.stdout.strip() if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # tracked code edits, and any change under checkpoints/ (a new, not yet committed checkpoint counts)
    code_changes = git("status", "--porcelain", "--untracked-files=no", "--", *RESULT_PATHS)
    ckpt_changes = git("status", "--porcelain", "--", "checkpoints")
    dirty = None if code_changes is None or ckpt_changes is None else code_changes + ckpt_changes
    return {
        "command": command,
        "commit": git("rev-parse", "HEAD") or "unknown",
        "uncommitted_changes": bool(dirty) if dirty is not None else None,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpu": cpu, "cpus_available": runner.cpu_count(), "platform": platform.platform(),
                    "load_average_start": load_start,
                    "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "versions": {"python": platform.python_version(), "tensorflow": _version("tensorflow"),
                     "keras": _version("keras"), "numpy": _version("numpy"), "scipy": _version("scipy"),
                     "pillow": _version("pillow"), "matplotlib": _version("matplotlib")},
        "wall_s": round(time.perf_counter() - started, 1),
        "counts": {"fused": counts.fused, "fused_from_cache": counts.fused_cached, "fuse_s": round(counts.fuse_s, 1),
                   "scored": counts.scored, "scored_from_cache": counts.scored_cached,
                   "score_s": round(counts.score_s, 1)},
    }


def _markdown(p: Plan, summaries: dict, records: dict, verdicts: list, figures: dict, captions: dict,
              prov: dict) -> str:
    suite = p.suite
    L = ["# Comparison report: fusion_tf against the original methods", ""]
    mach, cnt = prov["machine"], prov["counts"]
    load = mach["load_average_start"]
    L += [f"Generated by `{prov['command']}` on {prov['date_utc']} from commit `{prov['commit'][:12]}`"
          + (" (with uncommitted changes in the code or checkpoints that produce these numbers)"
             if prov["uncommitted_changes"] else "")
          + f". Machine: {mach['cpu']}, {mach['cpus_available']} CPU(s) available"
          + (f", load average {load[0]:.2f} at the start (other processes were running)" if load and load[0] > 0.5
             else "")
          + f"; Python {prov['versions']['python']}, TensorFlow {prov['versions']['tensorflow']}, "
          f"NumPy {prov['versions']['numpy']}. Wall time {prov['wall_s']:.0f} s; fused images: {cnt['fused']} "
          f"computed, {cnt['fused_from_cache']} from the cache; scored images: {cnt['scored']} computed, "
          f"{cnt['scored_from_cache']} from the cache.", "",
          "Every number below was computed by this command (now, or by an earlier run whose cache entry is keyed "
          "by the same code, weights and images), except the columns headed *paper (printed)*, which quote "
          "the papers. Metric values are means over the images of a set; per-image values are in the CSV "
          "files beside this report and in the collapsed tables.", ""]

    # acceptance
    L += ["## Acceptance", ""]
    rows = []
    for v in verdicts:
        ds = next(s.spec for s in p.sets if s.spec.key == v["dataset"]) if any(
            s.spec.key == v["dataset"] for s in p.sets) else None
        where = f"{ds.title if ds else v['dataset']}"
        if v["verdict"] == "NOT RUN":
            value, verdict = "—", f"NOT RUN ({v['why']})"
        elif v["kind"] == "within":
            value = f"Δ {_pct(v['value'])} ({_f(v['ours'])} vs {_f(v['ref'])})"
            verdict = f"**{v['verdict']}**"
        else:
            value, verdict = _f(v["value"]), f"**{v['verdict']}**"
        thr = f"\\|Δ\\| ≤ {v['threshold'] * 100:g} %" if v["kind"] == "within" else f"≥ {v['threshold']:g}"
        rows.append([v["label"], where, value, thr, verdict])
    L += _table(["criterion", "set", "value", "threshold", "verdict"], rows)
    L += ["Δ = (ours − original) / original, on the set's mean. *Within 3 %* is read symmetrically.", ""]

    # methods
    L += ["## Methods", ""]
    rows = []
    for m in suite.methods:
        if not any(m.name in s.spec.methods for s in p.sets):
            continue
        if m.name in p.missing:
            status = f"not evaluated: {p.missing[m.name]}"
        elif m.role == "published":
            status = "published images"
        else:
            status = checkpoint_state(m.weights) if m.role == "ours" else "released weights"
        where = _display(m.folder) if m.role == "published" else (_display(m.weights) if m.weights else None)
        digest = p.digests.get(m.name, "")[:12]
        rows.append([f"`{m.name}`", m.label or m.family, m.role, f"`{where}`" if where else "—", f"`{digest}`" if digest else "—",
                     status or "—"])
    L += _table(["column", "what", "role", "weights / images", "sha256 (12)", "state"], rows)
    L += ["The sha256 column identifies the weights (all files of a checkpoint) or the published images used.",
          ""]

    # per set
    for s in p.sets:
        spec, summ = s.spec, summaries.get(s.spec.key, {})
        L += [f"## {spec.title}", ""]
        imgs = list(s.groups)
        src = _display(spec.sources) + (f", re-encoded as JPEG quality {spec.jpeg_quality}" if spec.jpeg_quality
                                        else "")
        L += [f"Sources: `{src}` — {len(imgs)} pairs ({', '.join(imgs) if len(imgs) <= 10 else imgs[0] + ' … ' + imgs[-1]})."]
        if spec.note:
            L += ["", spec.note]
        if s.missing:
            L += ["", "Not evaluated here: " + ", ".join(f"`{n}` ({p.missing[n]})" for n in s.missing) + "."]
        L += [""]
        if not s.methods:
            L += ["Nothing to evaluate in this set.", ""]
            continue
        L += ["### Means", ""]
        L += _table(["metric", *(f"`{n}`" for n in s.methods)],
                    [[f"`{i}`{_arrow(i)}", *(_f(summ[n]["metrics"][i]["mean"]) for n in s.methods)]
                     for i in spec.metrics])
        comps = [c for c in suite.comparisons if c.ours in s.methods and c.reference in s.methods]
        if comps:
            L += ["### Ours against the reference (relative difference of the means)", ""]
            L += _table(["metric", *(f"`{c.ours}` vs `{c.reference}`" for c in comps)],
                        [[f"`{i}`{_arrow(i)}",
                          *(_pct(relative(summ[c.ours]["metrics"][i]["mean"], summ[c.reference]["metrics"][i]["mean"]))
                            for c in comps)] for i in spec.metrics])
        where = captions.get(spec.key, "")
        for kind, caption in (("bars", "Means with the sample standard deviation over the images"),
                              ("crops", f"Crops of at most {CROP}×{CROP} pixels as the metrics see them (MATLAB "
                                        f"grey), on the focus boundary ({where}): sources A, B, "
                                        "then each column")):
            if (spec.key, kind) in figures:
                L += [f"![{caption}]({figures[(spec.key, kind)]})", "", f"*{caption}.*", ""]
        head = [i for i in spec.headline if i in spec.metrics]
        if head:
            L += [f"<details><summary>Per image: {', '.join(head)} (every metric: "
                  f"<code>per_image_{spec.key}.csv</code>)</summary>", ""]
            by = {(r["method"], r["image"]): r for r in records[spec.key]}
            for i in head:
                L += [f"`{i}`{_arrow(i)}", ""]
                L += _table(["image", *(f"`{n}`" for n in s.methods)],
                            [[im, *(_f(by[(n, im)][i]) for n in s.methods)] for im in imgs])
            L += ["</details>", ""]

    # papers
    L += ["## Against the papers' printed numbers", ""]
    for row in suite.papers:
        s = next((x for x in p.sets if x.spec.key == row.dataset), None)
        if s is None:
            continue
        present = [n for n in row.compare if n in s.methods]
        L += [f"**{row.source}** — {row.row}. This run: {s.spec.title}."
              + (f" {row.note}" if row.note else ""), ""]
        table = []
        for i, v in row.values.items():
            printed = f"{v:g}" + (f" (×{row.scale[i]:g} = {v * row.scale[i]:.2f})" if i in row.scale else "")
            summ = summaries[s.spec.key]
            table.append([f"`{i}`", printed, *(_f(summ[n]["metrics"][i]["mean"]) if i in s.spec.metrics else "—"
                                               for n in present)])
        L += _table(["metric", "paper (printed)", *(f"`{n}` (this run)" for n in present)], table)
    L += [*suite.remarks.get("papers", ()), ""]

    # notes
    L += ["## Known limits per model", ""]
    for fam, text in suite.notes.items():
        L += [f"- **{fam}**: {text}"]
    L += [""]

    # method
    L += ["## How this report is made", "",
          f"- Command: `{prov['command']}` (`fusion-tf evaluate --report` is the same). It fuses every "
          "set with every model whose weights are present, reads the published images, scores everything and "
          "rewrites this folder; missing shipped checkpoints are listed above, not fatal.",
          f"- Grey conversion: {report.GREY_RULE}.",
          "- Metrics (ids of `fusion_tf.metrics`; `fusion-tf evaluate -h`): "
          + "; ".join(f"`{i}` {M.INFO[i].title}" for i in dict.fromkeys(i for s in p.sets for i in s.spec.metrics))
          + ". Per set: " + "; ".join(f"{s.spec.key}: {', '.join(s.spec.metrics)}" for s in p.sets) + ".",
          *(f"- {line}" for line in suite.remarks.get("method", ())),
          "- Models run through the same fusers as `fusion-tf fuse`, with their default options; the fused "
          "images are kept as lossless PNGs.",
          "- Fused images and scores are cached under the work folder (default `results/report_work/`, not "
          "committed), keyed by SHA-256 of the code, the weights and the images; delete it to recompute from "
          "scratch. Given the same checkpoints and code the report's numbers are identical run to run.",
          ""]
    return "\n".join(L)


def build_report(suite: Suite, out, work, workers: int | None = None, command: str = "python evaluate.py --report",
                 plots_on: bool = True, progress: bool | None = None) -> dict:
    """Run the whole comparison and (atomically) write the report folder ``out``; returns report.json's content."""
    started = time.perf_counter()
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    out, work = Path(out), Path(work)
    if workers is not None and workers < 1:
        raise FusionError("--workers must be at least 1")
    if out.exists() and not out.is_dir():
        raise FusionError(f"--out exists and is not a folder: {out}")
    previous = []
    if out.is_dir() and any(out.iterdir()):
        marker = out / MARKER
        try:
            previous = json.loads(marker.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            raise FusionError(f"--out {out} is not empty and holds no {MARKER} of an earlier report; "
                              "choose an empty or new folder") from None
    work.mkdir(parents=True, exist_ok=True)
    p = plan(suite, work)
    counts = Counts()
    fused = _fuse_all(p, counts, progress)
    records = _score_all(p, fused, workers, counts, progress)
    summaries = {k: report.summarize(v, [i for i in p.set(k).spec.metrics]) for k, v in records.items() if v}
    verdicts = evaluate_criteria(p, summaries)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=out.parent))
    try:
        figures, captions, files = {}, {}, []
        for s in p.sets:
            if not s.methods:
                continue
            name = f"per_image_{s.spec.key}.csv"
            report.write_per_image_csv(records[s.spec.key], s.spec.metrics, tmp / name)
            files.append(name)
            if not plots_on:
                continue
            head = [i for i in s.spec.headline if i in s.spec.metrics]
            if head:
                name = f"bars_{s.spec.key}.png"
                plots.plot_bars(summaries[s.spec.key], head, tmp / name, dpi=60)
                figures[(s.spec.key, "bars")] = name
            rows, where = _crop_rows(p, s, fused)
            if rows:
                name = f"crops_{s.spec.key}.png"
                plots.plot_crops(rows, tmp / name)
                figures[(s.spec.key, "crops")] = name
                captions[s.spec.key] = "; ".join(where)
        files += sorted(figures.values())
        prov = _provenance(started, load_start, counts, command)
        (tmp / "README.md").write_text(_markdown(p, summaries, records, verdicts, figures, captions, prov),
                                       encoding="utf-8")
        files = ["README.md", *files, MARKER]
        doc = {
            "generated": prov,
            "files": files,
            "acceptance": verdicts,
            "missing": p.missing,
            "methods": {m.name: {"role": m.role, "family": m.family, "model": m.model,
                                 "weights": _display(m.weights) if m.weights else None,
                                 "folder": _display(m.folder) if m.folder else None,
                                 "sha256": p.digests.get(m.name)} for m in suite.methods},
            "sets": {s.spec.key: {"title": s.spec.title, "sources": _display(s.spec.sources),
                                  "jpeg_quality": s.spec.jpeg_quality, "images": list(s.groups),
                                  "metrics": list(s.spec.metrics), "methods": s.methods,
                                  "summary": summaries.get(s.spec.key, {})} for s in p.sets},
            "grey_conversion": report.GREY_RULE,
        }
        (tmp / MARKER).write_text(json.dumps(report._json_safe(doc), indent=1, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
        out.mkdir(parents=True, exist_ok=True)
        for name in previous:  # files of the earlier report this one no longer writes
            if name not in files and "/" not in name and (out / name).is_file():
                (out / name).unlink()
        for name in files:  # the marker last: an interrupted move leaves the old marker's list valid
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return doc


def run_report(args) -> None:
    """``evaluate --report`` from parsed CLI arguments."""
    shared = Path(args.shared) if args.shared else DEFAULT_SHARED
    if not shared.is_dir():
        raise InputImageError(f"--shared: not a folder: {shared} (the specification folder with data/ and reference/)")
    out = Path(args.out) if args.out else DEFAULT_OUT
    work = Path(args.work) if args.work else DEFAULT_WORK
    command = "python evaluate.py --report"
    for flag, value, default in (("--shared", shared, DEFAULT_SHARED), ("--out", out, DEFAULT_OUT),
                                 ("--work", work, DEFAULT_WORK)):
        if Path(value).resolve() != default.resolve():
            command += f" {flag} {_display(value)}"
    doc = build_report(default_suite(shared), out, work, workers=args.workers, command=command,
                       plots_on=not args.no_plots)
    for v in doc["acceptance"]:
        print(f"{v['verdict']:<8} {v['label']} ({v['dataset']})")
    c = doc["generated"]["counts"]
    print(f"wrote {out}/README.md and {len(doc['files']) - 1} more file(s) in {doc['generated']['wall_s']:.0f} s "
          f"({c['fused']} fused + {c['fused_from_cache']} cached, {c['scored']} scored + "
          f"{c['scored_from_cache']} cached)")
