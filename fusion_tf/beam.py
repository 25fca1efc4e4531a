"""Bulk fusion on Apache Beam: ``fuse --batch DIR -o OUT --engine beam`` / ``python -m fusion_tf.beam``.

The same groups as ``fuse --batch`` (:func:`fusion_tf.batch.batch_groups`) go through a Beam pipeline
that runs locally on the DirectRunner and, given ``--beam-options "--runner=…"``, on Dataflow, Flink or
Spark (``docs/bulk.md``)::

    Create((group, [frame paths]))            keyed by group; a stack is ONE element (GACN: calibration)
      → RunInference(KeyedModelHandler(FuserModelHandler))
            load_model: fusion_tf.api.load_fuser once per worker process (tile, backend, multi, … applied)
            run_inference: fusion_tf.api.fuse per group — decode, optional registration, tiling, fusion;
                           a FusionError (unreadable frame, sizes that differ) becomes that group's result
      → write OUT/<group><suffix>               → GroupOutcome (fused / failed, seconds, message)
      → ToList → OUT/batch.csv                  the --batch table (fusion_tf.batch.write_log), group order

The model handler runs the project's own fuser rather than the exported SavedModel: the SavedModel
matches ``fuse`` only within 1 grey level (measured: all 20 Lytro pairs with MFF-GAN differ in a few
pixels) and its signature takes pairs, not stacks, whereas this handler gives ``fuse --batch``'s bytes by
construction, stacks included.  Inputs and outputs are paths every worker can see (a local disk for
the DirectRunner, a shared filesystem on a cluster).  Needs the ``beam`` extra: ``pip install -e ".[beam]"``.
"""

from __future__ import annotations

import csv
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from fusion_tf import batch
from fusion_tf.batch import LOG_NAME, GroupOutcome
from fusion_tf.errors import FusionError

INSTALL_HINT = 'the Beam engine needs apache-beam: pip install -e ".[beam]"'


class _QuietBeam(logging.Filter):
    """Drops two harmless Beam 2.77 warnings on the root logger: bigquery's "apitools not found" at
    import, and "Resource module is not available" at each model load (Beam's import of ``resource``
    shares a try block with an optional torch import)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return not (text.startswith("apitools not found") or text.startswith("Resource module is not available"))


if not any(isinstance(f, _QuietBeam) for f in logging.getLogger().filters):
    logging.getLogger().addFilter(_QuietBeam())

try:  # the module imports without Beam; using it without Beam is one clear error (_beam)
    from apache_beam.ml.inference.base import ModelHandler as _ModelHandler
    from apache_beam.ml.inference.base import PredictionResult
except ImportError:
    _ModelHandler, PredictionResult = object, None


def _beam():
    try:
        import apache_beam
    except ImportError:
        raise FusionError(INSTALL_HINT) from None
    return apache_beam


@dataclass
class GroupResult:
    """What the model handler returns for one group: the fused image or the group's error."""

    fused: Any  # uint8/uint16 array, or None when the group failed
    message: str
    seconds: float
    metadata: Any = None  # the first source's EXIF/ICC (core.imageio.ImageMetadata), written as --batch does


def model_handler(model: str, weights: str | None = None, fuser_options: dict | None = None,
                  fuse_options: dict | None = None, min_batch_size: int = 1, max_batch_size: int = 1):
    """A RunInference ``ModelHandler`` for keyed groups ``(group, [frame paths])`` (a KeyedModelHandler
    around :class:`FuserModelHandler`).  ``fuser_options`` go to :func:`fusion_tf.api.load_fuser`,
    ``fuse_options`` (``align``, …) to :func:`fusion_tf.api.fuse`."""
    _beam()
    from apache_beam.ml.inference.base import KeyedModelHandler

    return KeyedModelHandler(FuserModelHandler(model, weights, fuser_options, fuse_options,
                                               min_batch_size=min_batch_size, max_batch_size=max_batch_size))


class FuserModelHandler(_ModelHandler):
    """RunInference model handler: the fuser loads once per worker process; one group per example."""

    def __init__(self, model: str, weights: str | None = None, fuser_options: dict | None = None,
                 fuse_options: dict | None = None, *, min_batch_size: int = 1, max_batch_size: int = 1):
        # workers get the launcher's oneDNN switch: the same numerics as the in-process --batch
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         env_vars={"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1")})
        self._model, self._weights = model, weights
        self._fuser_options, self._fuse_options = dict(fuser_options or {}), dict(fuse_options or {})

    def load_model(self):
        from fusion_tf import api, tf_runtime

        tf_runtime.configure()
        return api.load_fuser(self._model, self._weights, **self._fuser_options)

    def run_inference(self, batch: Sequence[list[str]], model, inference_args=None) -> list:
        from fusion_tf import api

        results = []
        for frames in batch:
            t0 = time.perf_counter()
            try:
                result = api.fuse(frames, fuser=model, depth=False, **self._fuse_options)  # no depth maps on Beam
                fused, message, metadata = result.fused, "", result.metadata
            except FusionError as exc:
                fused, message, metadata = None, str(exc), None
            results.append(PredictionResult(frames, GroupResult(fused, message, time.perf_counter() - t0, metadata),
                                            model_id=self._model))
        return results

    def get_num_bytes(self, batch) -> int:
        return sum(len(str(f)) for frames in batch for f in frames)

    def get_metrics_namespace(self) -> str:
        return "fusion_tf"


def _write_group(keyed, out_dir: str, suffix: str) -> GroupOutcome:
    """Post-processing: the fused image to ``out_dir/<group><suffix>`` → the group's row of the table."""
    from apache_beam.metrics import Metrics

    from fusion_tf.core.imageio import write_image

    name, prediction = keyed
    result, frames = prediction.inference, len(prediction.example)
    if result.fused is None:
        Metrics.counter("fusion_tf", "groups_failed").inc()
        return GroupOutcome(name, frames, result.seconds, "failed", result.message)
    t0 = time.perf_counter()
    try:
        write_image(Path(out_dir) / f"{name}{suffix}", result.fused, metadata=result.metadata)
    except FusionError as exc:
        Metrics.counter("fusion_tf", "groups_failed").inc()
        return GroupOutcome(name, frames, result.seconds + time.perf_counter() - t0, "failed", str(exc))
    Metrics.counter("fusion_tf", "groups_fused").inc()
    return GroupOutcome(name, frames, result.seconds + time.perf_counter() - t0, "fused")


def _write_table(outcomes: list[GroupOutcome], out_dir: str, order: list[str], skipped: list[GroupOutcome]) -> None:
    rank = {name: i for i, name in enumerate(order)}
    rows = sorted([*outcomes, *skipped], key=lambda o: rank[o.group])
    batch.write_log(Path(out_dir) / LOG_NAME, rows)


def read_log(path: str | Path) -> list[GroupOutcome]:
    """The rows of a ``batch.csv`` (written by either engine)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [GroupOutcome(r["group"], int(r["frames"]), float(r["seconds"]), r["status"], r["message"])
                for r in csv.DictReader(fh)]


def build_pipeline(pipeline, groups: dict[str, list[Path]], out_dir: str | Path, handler, suffix: str = ".png",
                   skipped: Iterable[GroupOutcome] = ()):
    """Add the fusion transforms to ``pipeline`` (a ``beam.Pipeline``) for ``groups`` (in table order)."""
    beam = _beam()
    from apache_beam.ml.inference.base import RunInference

    out_dir, skipped = str(Path(out_dir).resolve()), list(skipped)
    done = {o.group for o in skipped}
    elements = [(name, [str(Path(f).resolve()) for f in frames]) for name, frames in groups.items() if name not in done]
    outcomes = (pipeline
                | "Groups" >> beam.Create(elements, reshuffle=True)
                | "Fuse" >> RunInference(handler)
                | "Write" >> beam.Map(_write_group, out_dir, suffix))
    (outcomes
     | "Collect" >> beam.combiners.ToList()
     | "Table" >> beam.Map(_write_table, out_dir, list(groups), skipped))
    return outcomes


def fuse_batch(groups: dict[str, list[Path]], out_dir: str | Path, model: str, weights: str | None = None, *,
               fuser_options: dict | None = None, suffix: str = ".png", skip_existing: bool = False,
               beam_options: str | Sequence[str] | None = None, min_batch_size: int = 1, max_batch_size: int = 1,
               **fuse_options) -> list[GroupOutcome]:
    """:func:`fusion_tf.batch.fuse_batch` on Beam: the same outputs, the same ``batch.csv``, the same
    outcomes (read back from ``batch.csv``, so any runner works).  ``beam_options``: Beam's own flags
    (``"--runner=FlinkRunner --flink_master=…"``), one string or a list; default: the DirectRunner."""
    beam = _beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flags = shlex.split(beam_options) if isinstance(beam_options, str) else list(beam_options or [])
    skipped = [GroupOutcome(name, len(frames), 0.0, "skipped", "output exists") for name, frames in groups.items()
               if skip_existing and (out_dir / f"{name}{suffix}").is_file()]
    if weights is not None and Path(weights).exists():
        weights = str(Path(weights).resolve())  # workers run elsewhere: an absolute path on the shared filesystem
    handler = model_handler(model, weights, fuser_options, fuse_options, min_batch_size, max_batch_size)
    log = out_dir / LOG_NAME
    log.unlink(missing_ok=True)  # a stale table from an earlier run must not be read back as this one's
    with beam.Pipeline(options=PipelineOptions(flags)) as pipeline:
        build_pipeline(pipeline, groups, out_dir, handler, suffix, skipped)
    if not log.is_file():
        raise FusionError(f"the Beam pipeline finished without writing {log} (is -o a folder the workers share?)")
    return read_log(log)


def main(argv: list[str] | None = None) -> int:
    """``python -m fusion_tf.beam DIR -o OUT [fuse options]`` is ``fusion-tf fuse --batch DIR -o OUT
    [fuse options] --engine beam``: one parser, one set of checks, the ``fuse --batch`` contract (exit 2
    when a group failed or the input is unusable)."""
    from fusion_tf.cli import main as cli_main

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        return cli_main(["fuse", "--help"])
    if not argv or argv[0].startswith("-"):
        print("python -m fusion_tf.beam: error: the folder of groups comes first: DIR -o OUT [fuse options]",
              file=sys.stderr)
        return 2
    return cli_main(["fuse", "--batch", argv[0], *argv[1:], "--engine", "beam"])


if __name__ == "__main__":
    # run the imported module's main, so that the classes workers unpickle are fusion_tf.beam's, not __main__'s
    from fusion_tf.beam import main as _main

    sys.exit(_main())
