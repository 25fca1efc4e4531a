"""Folders of stacks: ``fusion-tf fuse --batch DIR -o OUTDIR`` fuses every group in one process.

Groups are found the way ``evaluate`` finds them — ``<name>-A/-B…``, ``<name>_1/_2…``, ``<name>_A/_B``
among DIR's files — plus one group per sub-folder holding a whole stack (its images in natural
order, e.g. ``V001.jpg … V065.jpg``).  The model loads once.  A group that fails (unreadable frame,
sizes that differ) is recorded and the others go on; ``batch.csv`` logs each group (frames, seconds,
status, message) and the command exits 2 if any failed.  ``--skip-existing`` resumes an interrupted
batch: a group whose output exists is not fused again.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fusion_tf.core.imageio import IMAGE_SUFFIXES, atomic_path, group_sources, list_images, natural_key
from fusion_tf.errors import FusionError, InputImageError

LOG_NAME = "batch.csv"


@dataclass
class GroupOutcome:
    group: str
    frames: int
    seconds: float
    status: str  # "fused", "skipped" (output existed) or "failed"
    message: str = ""


def batch_groups(folder: str | Path) -> dict[str, list[Path]]:
    """``{group: [frames in order]}`` for a batch folder: named groups among its files, one per sub-folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputImageError(f"--batch {folder}: not a folder")
    groups: dict[str, list[Path]] = {}
    has_files = any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())
    if has_files:
        groups.update(group_sources(folder))
    for sub in sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=natural_key):
        frames = list_images(sub)
        if len(frames) < 2:
            raise InputImageError(f"--batch {folder}: sub-folder {sub.name} holds {len(frames)} image, need 2")
        if sub.name in groups:
            raise InputImageError(f"--batch {folder}: group {sub.name!r} is both a sub-folder and a file group")
        groups[sub.name] = frames
    if not groups:
        raise InputImageError(f"--batch {folder}: no image groups (expected <name>-A/-B files or one sub-folder per stack)")
    return groups


def check_output_folder(batch_dir: str | Path, out_dir: str | Path) -> None:
    """The output folder may not be the batch folder or inside it (outputs would become inputs)."""
    batch_dir, out_dir = Path(batch_dir).resolve(), Path(out_dir).resolve()
    if out_dir == batch_dir or batch_dir in out_dir.parents:
        raise InputImageError(f"-o {out_dir}: the output folder must lie outside the --batch folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputImageError(f"-o {out_dir}: exists and is not a folder")


def fuse_batch(fuser, groups: dict[str, list[Path]], out_dir: str | Path, suffix: str = ".png",
               skip_existing: bool = False, progress: bool | None = None, depth_dir: str | Path | None = None,
               **fuse_options) -> list[GroupOutcome]:
    """Fuse each group with the loaded ``fuser`` into ``out_dir/<group><suffix>``; never stops on a
    group's bad input (a :class:`FusionError`), which is recorded instead.  Writes ``batch.csv``.
    ``depth_dir``: also each group's depth map as ``depth_dir/<group>.png`` (``fuse --save-depth``).
    ``fuse_options`` (``align``, ``align_reference``, …) go to :func:`fusion_tf.api.fuse` per group."""
    from tqdm import tqdm

    from fusion_tf import api
    from fusion_tf.core.imageio import write_image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    bar = tqdm(groups.items(), total=len(groups), desc="batch", unit="group", file=sys.stderr,
               disable=None if progress is None else not progress)
    for name, frames in bar:
        target = out_dir / f"{name}{suffix}"
        if skip_existing and target.is_file():
            outcomes.append(GroupOutcome(name, len(frames), 0.0, "skipped", "output exists"))
            continue
        t0 = time.perf_counter()
        try:
            result = api.fuse(frames, fuser=fuser, depth=depth_dir is not None, **fuse_options)
            write_image(target, result.fused, metadata=result.metadata)  # depth: fuse_options["output_depth"]
            if depth_dir is not None:
                api.write_depth(result, Path(depth_dir) / f"{name}.png")
        except FusionError as exc:
            outcomes.append(GroupOutcome(name, len(frames), time.perf_counter() - t0, "failed", str(exc)))
            continue
        outcomes.append(GroupOutcome(name, len(frames), time.perf_counter() - t0, "fused"))
    write_log(out_dir / LOG_NAME, outcomes)
    return outcomes


def report(outcomes: list[GroupOutcome], model: str, out_dir, seconds: float, engine: str = "") -> int:
    """The batch's closing lines (one per failed group on stderr, the summary on stdout) → exit code."""
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        print(f"error: group {o.group}: {o.message}", file=sys.stderr)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("fused", "skipped", "failed")}
    print(f"batch of {len(outcomes)} groups with {model}{engine} in {seconds:.2f} s: {counts['fused']} fused, "
          f"{counts['skipped']} skipped, {counts['failed']} failed → {out_dir}/ (log {LOG_NAME})")
    return 2 if failed else 0


def write_log(path: Path, outcomes: list[GroupOutcome]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["group", "frames", "seconds", "status", "message"])
    for o in outcomes:
        writer.writerow([o.group, o.frames, f"{o.seconds:.3f}", o.status, o.message])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
