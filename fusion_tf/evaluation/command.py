"""``fusion-tf evaluate``: score fused images (read from folders or produced by models) against
their sources with the metric suite, and write CSV / Markdown / JSON reports and figures.

    fusion-tf evaluate --sources DIR [--model NAME[=WEIGHTS] ...] [--fused NAME=DIR ...]
                       [--match CSV] [--metrics a,b,c] [--workers N] [--no-plots] --out DIR
    fusion-tf evaluate --report [--shared DIR] [--out DIR] [--work DIR] [--workers N]

Outputs in ``--out``: ``per_image.csv`` (method, image, one column per metric, ``seconds`` when a
model ran), ``summary.csv`` / ``summary.md`` / ``summary.json`` (mean ± std per method and metric),
``bars.png`` and ``per_image.png``, and for models ``fused/<model>/<image>.png``. Everything is
written to a temporary folder first and moved into ``--out`` only after success, so a failed run
leaves nothing behind. Input problems end with a one-line ``error:`` message and exit code 2.

``--report`` runs the project's comparison report instead (:mod:`fusion_tf.evaluation.comparison`):
the fixed test sets, every shipped model, the originals' weights and published images, written to
``docs/results/`` by default.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from fusion_tf import metrics as M
from fusion_tf.errors import FusionError, InputImageError

from . import grouping, plots, report, runner

__all__ = ["add_arguments", "run", "default_run", "DEFAULT_OUT"]

DEFAULT_OUT = Path("results") / "evaluate_default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sources", metavar="DIR",
                        help="source images grouped by name: <image>_1/_2(/_3...), <image>-A/-B(/-C) or "
                             "<image>_A/_B")
    parser.add_argument("--model", action="append", default=[], metavar="[LABEL:]MODEL[=WEIGHTS]",
                        help="fuse every group with MODEL (its shipped weights unless =WEIGHTS), shown as column "
                             "LABEL (default: the model name); repeatable, e.g. --model mffgan "
                             "--model orig:mffgan=../shared/reference/mff_gan/checkpoint/Lytro_model/CGAN.model-19")
    parser.add_argument("--fused", action="append", default=[], metavar="NAME=DIR",
                        help="folder of already fused results, one <image>.<ext> per group; repeatable")
    parser.add_argument("--match", metavar="CSV",
                        help="map other file names: header method,image,path (or image,path for every "
                             "--fused folder); relative paths against the method's DIR (CSV-only "
                             "methods: against the CSV's folder)")
    parser.add_argument("--metrics", metavar="a,b,c",
                        help=f"metric ids (default: {','.join(M.DEFAULT_METRICS)}; also "
                             f"{','.join(k for k in M.METRICS if k not in M.DEFAULT_METRICS)})")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="processes computing metrics (default: min(CPUs, number of fused images))")
    parser.add_argument("--no-plots", action="store_true", help="skip the matplotlib figures")
    parser.add_argument("--out", metavar="DIR",
                        help="report folder (created or updated); required unless --report "
                             "(default there: docs/results)")
    rep = parser.add_argument_group("comparison report (--report)")
    rep.add_argument("--report", action="store_true",
                     help="the project's comparison report: Lytro test pairs, grayscale set and GACN's 26 pairs "
                          "fused by every shipped model and the originals' weights, published results, "
                          "acceptance verdicts, figures; Markdown in --out (default docs/results)")
    rep.add_argument("--shared", metavar="DIR",
                     help="specification folder with data/ and reference/ (default: ../shared beside the checkout)")
    rep.add_argument("--work", metavar="DIR",
                     help="cache of fused images and scores (default: results/report_work)")


def run(args: argparse.Namespace) -> int:
    """Run the evaluation described by parsed ``args``; returns the exit code (0, or 2 on bad input)."""
    try:
        if getattr(args, "report", False):
            _run_report(args)
        else:
            _run(args)
    except (FusionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_report(args) -> None:
    given = [flag for flag, v in (("--sources", args.sources), ("--model", args.model), ("--fused", args.fused),
                                  ("--match", args.match), ("--metrics", args.metrics)) if v]
    if given:
        raise FusionError(f"--report chooses its own sets, methods and metrics: drop {given[0]}")
    from . import comparison

    comparison.run_report(args)


def _run(args) -> None:
    for flag in ("sources", "out"):
        if not getattr(args, flag):
            raise FusionError(f"--{flag} is required (or use --report)")
    if getattr(args, "shared", None) or getattr(args, "work", None):
        raise FusionError("--shared and --work belong to --report")
    try:
        ids = M.resolve(args.metrics)
    except ValueError as exc:
        raise FusionError(str(exc)) from None
    if args.workers is not None and args.workers < 1:
        raise FusionError("--workers must be at least 1")
    if not Path(args.sources).is_dir():
        raise InputImageError(f"--sources: not a folder: {args.sources}")
    groups = grouping.source_groups(args.sources)
    models = grouping.parse_models(args.model)
    if models:
        from fusion_tf.weights.resolve import resolve

        for _, model, weights in models:  # a missing or foreign weights file: before any fusing
            if weights is not None:
                resolve(model, weights)
    fused_specs = grouping.parse_named(args.fused, "--fused")
    clash = {n for n, _, _ in models} & {n for n, _ in fused_specs}
    if clash:
        raise FusionError(f"method name {sorted(clash)[0]!r} used for both --model and --fused")
    fused = grouping.fused_paths(groups, fused_specs, args.match)
    if not fused and not models:
        raise FusionError("nothing to evaluate: give --fused NAME=DIR, --model NAME or a --match CSV with methods")
    runner.check_sizes(groups, fused)
    counts = {len(v) for v in groups.values()}
    if counts != {2}:
        needing = [i for i in ids if M.NEEDS_SOURCES[i]]
        if needing:
            raise FusionError(
                f"groups with {sorted(counts - {2})[0]} sources: metrics {', '.join(needing)} are defined "
                f"for 2 sources only; choose no-reference metrics with --metrics "
                f"({', '.join(k for k, v in M.NEEDS_SOURCES.items() if not v)})")

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FusionError(f"--out exists and is not a folder: {out}")
    parent = out.parent if out.parent.is_dir() else None
    tmp = Path(tempfile.mkdtemp(prefix=".evaluate-", dir=parent))
    try:
        jobs = [runner.Job(method, image, tuple(str(p) for p in groups[image]), str(path))
                for method, mapping in fused.items() for image, path in mapping.items()]
        jobs += runner.run_models(models, groups, tmp / "fused")
        records = runner.run_jobs(jobs, ids, workers=args.workers)
        columns = ids + (["seconds"] if any(r["seconds"] is not None for r in records) else [])
        summary = report.summarize(records, ids)
        report.write_per_image_csv(records, ids, tmp / "per_image.csv")
        report.write_summary_csv(summary, ids, tmp / "summary.csv")
        md = report.write_summary_md(summary, ids, tmp / "summary.md")
        report.write_summary_json(summary, ids, tmp / "summary.json", context={
            "sources": str(Path(args.sources)), "images": list(groups),
            "fused": {m: str(Path(next(iter(p.values()))).parent) for m, p in fused.items()},
            "models": {n: {"model": m, "weights": w} for n, m, w in models}, "match": args.match})
        if not args.no_plots:
            plots.make_plots(summary, records, columns, tmp)
        out.mkdir(parents=True, exist_ok=True)
        for item in sorted(tmp.iterdir()):
            dest = out / item.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            shutil.move(str(item), str(dest))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print((out / md.name).read_text(encoding="utf-8"))
    print(f"wrote {len(records)} scored images to {out}/ (per_image.csv, summary.csv, summary.md, summary.json"
          f"{'' if args.no_plots else ', bars.png, per_image.png'})")


def _samples_dir() -> Path:
    here = Path.cwd() / "datasets" / "samples"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "datasets" / "samples"


def default_run(out: str | Path = DEFAULT_OUT, metrics: str | None = None) -> int:
    """``python evaluate.py`` with no arguments: the bundled sample pairs (``datasets/samples``)
    fused by every model whose default weights are present (``fusion_tf.registry.available_models``),
    the default metric suite (or ``metrics``), report in ``results/evaluate_default/``."""
    try:
        from fusion_tf.registry import available_models
    except ImportError as exc:  # the model registry is not installed
        print(f"error: no model registry available ({exc})", file=sys.stderr)
        return 2
    models = available_models()
    if not models:
        print("error: no model has shipped weights; nothing to evaluate (use --fused or --model NAME=WEIGHTS)",
              file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="evaluate.py")
    add_arguments(parser)
    argv = ["--sources", str(_samples_dir()), "--out", str(out)] + (["--metrics", metrics] if metrics else [])
    for name in models:
        argv += ["--model", name]
    return run(parser.parse_args(argv))
