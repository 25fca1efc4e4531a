"""Scoring jobs (one fused image against its sources) and running them over a process pool.

Models are run in the calling process (they hold TensorFlow state); the metric computations,
which are pure NumPy, run in worker processes. TensorFlow is never imported here.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fusion_tf import metrics as M
from fusion_tf.core.imageio import read_image, read_images, write_image
from fusion_tf.errors import FusionError, InputImageError

__all__ = ["Job", "score_job", "image_size", "check_sizes", "run_models", "run_jobs", "cpu_count"]


@dataclass(frozen=True)
class Job:
    """One fused image to score: ``method``/``image`` label it, ``seconds`` is a model's time."""

    method: str
    image: str
    sources: tuple[str, ...]
    fused: str
    seconds: float | None = None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def image_size(path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise InputImageError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(f"cannot read image {path}: {exc}") from None


def check_sizes(groups: dict[str, Sequence[Path]], fused: dict[str, dict[str, Path]]) -> None:
    """Fail early (before any computation) on unreadable headers or size mismatches."""
    for image, paths in groups.items():
        sizes = [image_size(p) for p in paths]
        if len(set(sizes)) != 1:
            raise InputImageError(f"sources of {image!r} differ in size: "
                                  + ", ".join(f"{Path(p).name} {w}x{h}" for p, (w, h) in zip(paths, sizes)))
        for method, mapping in fused.items():
            w, h = image_size(mapping[image])
            if (w, h) != sizes[0]:
                raise InputImageError(f"{method}: fused {mapping[image]} is {w}x{h} but the sources of "
                                      f"{image!r} are {sizes[0][0]}x{sizes[0][1]}")


def score_job(job: Job, metric_ids: Sequence[str]) -> dict:
    """Read one fused image and its sources, convert to grey (MATLAB rgb2gray), compute the metrics."""
    sources = [M.as_gray(read_image(p, depth=8)) for p in job.sources]
    fused = M.as_gray(read_image(job.fused, depth=8))
    if fused.shape != sources[0].shape:
        raise InputImageError(f"{job.method}: fused image for {job.image!r} is {fused.shape[1]}x{fused.shape[0]}, "
                              f"sources are {sources[0].shape[1]}x{sources[0].shape[0]}")
    try:
        values = M.compute_sources(metric_ids, sources, fused)
    except ValueError as exc:
        raise FusionError(f"{job.method}/{job.image}: {exc}") from None
    return {"method": job.method, "image": job.image, **values, "seconds": job.seconds}


def _score_star(args):
    return score_job(*args)


def _quiet(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None lets tqdm hide the bar when stderr is not a terminal."""
    return None if progress is None else not progress


def _call_fuser(fuser, images: list[np.ndarray]) -> np.ndarray:
    """Accept both the plain ``callable(images) -> array`` contract and the package's ``Fuser``
    objects (``.fuse(images) -> FusionResult``)."""
    if hasattr(fuser, "fuse"):
        out = fuser.fuse(images)
    else:
        out = fuser(images)
    out = getattr(out, "fused", out)
    return np.asarray(out)


def run_models(models: list[tuple[str, str, str | None]], groups: dict[str, Sequence[Path]], fused_dir: Path,
               load_fuser: Callable | None = None, progress: bool | None = None) -> list[Job]:
    """Fuse every group with every ``(label, model, weights)`` (in this process), timing each call, and
    write the fused images to ``fused_dir/<label>/<image>.png``. Returns the scoring jobs.

    ``load_fuser(model, weights)`` defaults to ``fusion_tf.registry.load_fuser``, imported here
    lazily so metric-only runs never import TensorFlow.
    """
    if not models:
        return []
    if load_fuser is None:
        from fusion_tf.registry import load_fuser
    from tqdm import tqdm

    jobs = []
    bar = tqdm(total=len(models) * len(groups), desc="fusing", unit="img", disable=_quiet(progress), file=sys.stderr)
    try:
        for name, model, weights in models:
            fuser = load_fuser(model, weights)
            for image, paths in groups.items():
                srcs = read_images([str(p) for p in paths])
                t0 = time.perf_counter()
                out = _call_fuser(fuser, srcs)
                seconds = time.perf_counter() - t0
                if out.dtype != np.uint8 or out.shape[:2] != srcs[0].shape[:2]:
                    raise FusionError(f"model {name} returned {out.dtype} {out.shape} for {image!r}; "
                                      f"expected uint8 of size {srcs[0].shape[:2]}")
                path = write_image(fused_dir / name / f"{image}.png", out)
                jobs.append(Job(name, image, tuple(str(p) for p in paths), str(path), seconds))
                bar.update()
    finally:
        bar.close()
    return jobs


def _mp_context():
    """fork is cheapest, but a process that has loaded TensorFlow (threads) must not fork: then use
    a forkserver (started once, with the metric modules preloaded) where available, else spawn."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and "tensorflow" not in sys.modules:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


#: Rough single-core cost (ms) of the slow metrics on a 520 x 520 pair (others ~100 or less), used to
#: balance the work when there are fewer images than workers.
_COST = {"fmi_dct": 2100, "qp": 2000, "fmi_pixel": 1200, "fmi_edge": 240, "viff": 180, "qcb": 180,
         "qe": 150, "ms_ssim": 120, "qy": 120, "qc": 120}


def _split(metric_ids: Sequence[str], parts: int) -> list[list[str]]:
    """Partition metric ids into ``parts`` groups of similar cost (greedy, longest first)."""
    groups: list[list[str]] = [[] for _ in range(parts)]
    load = [0] * parts
    for mid in sorted(metric_ids, key=lambda m: -_COST.get(m, 100)):
        k = load.index(min(load))
        groups[k].append(mid)
        load[k] += _COST.get(mid, 100)
    return [g for g in groups if g]


def run_jobs(jobs: Sequence[Job], metric_ids: Sequence[str], workers: int | None = None,
             progress: bool | None = None) -> list[dict]:
    """Score all jobs over ``workers`` processes (default: the CPUs available), results in job order.

    Work is spread over images; when there are fewer images than workers, each image's metrics are
    also split into groups of similar cost, so a single pair uses all workers. The first failure
    cancels the rest and is raised. ``progress``: tqdm bar on stderr (None: only on a terminal).
    """
    from tqdm import tqdm

    jobs = list(jobs)
    metric_ids = list(metric_ids)
    if not jobs:
        return []
    n_cpu = max(1, workers or cpu_count())
    parts = max(1, min(n_cpu // len(jobs), len(metric_ids)))
    groups = _split(metric_ids, parts) if parts > 1 else [metric_ids]
    # image-major order: a worker then meets the same sources again (metrics cache their features)
    order = sorted(range(len(jobs)), key=lambda k: (jobs[k].sources, k))
    tasks = [(k, tuple(g)) for k in order for g in groups]
    n_workers = min(n_cpu, len(tasks))
    partial: list[dict] = [{} for _ in jobs]

    def merge(k, rec):
        partial[k].update(rec)

    if n_workers == 1:
        for k, ids in tqdm(tasks, desc="scoring", unit="img", disable=_quiet(progress), file=sys.stderr):
            merge(k, score_job(jobs[k], ids))
    else:
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=_mp_context()) as pool:
            # submit (which starts the workers) before the progress bar starts its monitor thread
            futures = {pool.submit(_score_star, (jobs[k], ids)): k for k, ids in tasks}
            pending = set(futures)
            with tqdm(total=len(tasks), desc="scoring", unit="task" if parts > 1 else "img",
                      disable=_quiet(progress), file=sys.stderr) as bar:
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                        for fut in done:
                            merge(futures[fut], fut.result())  # re-raises a worker's exception
                            bar.update()
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise
    keys = ["method", "image", *metric_ids, "seconds"]
    return [{key: rec[key] for key in keys} for rec in partial]
