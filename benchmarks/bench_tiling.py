"""Tiled vs whole-image fusion: time and peak memory of ``fusion-tf fuse [--tile N]``.

    python benchmarks/bench_tiling.py [--tile 512] [--frames 65] [--only NAME ...] [--untiled {stack,all,none}]

Workloads (each run as the real command line, ``fusion_tf.cli.main``, in a fresh process):

* ``gacn-stack-calibration`` / ``gacn-stack-serial``: the first ``--frames`` of
  ``../shared/data/stack_v4`` (1600×1200 colour), streamed frame by frame, released GACN weights;
* ``mffgan-pair`` / ``gacn-pair``: a synthetic ``--pair-size`` (default 4000×3000) colour pair (random
  texture, left half sharp in A and blurred in B, the other way round on the right), written once
  as PNG to a temporary folder.  Untiled runs of these are off by default (``--untiled all`` turns
  them on): whole-image MFF-GAN at 12 Mpx needs several times the 3 GB budget.

Peak RSS: every run goes through a small launcher process (no TensorFlow) that starts the
workload as its only child and reads ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it
exits, so each figure is that one process's peak.  Time: ``fuse_s`` is the command's own fusion
time (after loading, as it prints it), ``wall_s`` the whole process (import, load, read, write).
The load average before and after each run is recorded: on a shared machine the times are only
comparable between runs made under similar load.  One JSON line per run.

``--interleaved K`` instead times whole-image and tiled fusion alternately, K rounds in one
process (GACN calibration over 3 stack frames; MFF-GAN on a 1600×1200 crop of the synthetic pair),
and reports the median tiled/whole ratio: robust to slow drifts of the load on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GACN_WEIGHTS = SHARED / "reference" / "gacn" / "weights" / "GACN_state_dict_pytorch_layout.npz"
STACK = SHARED / "data" / "stack_v4"
WORKLOADS = ("gacn-stack-calibration", "gacn-stack-serial", "mffgan-pair", "gacn-pair")


def synthetic_pair(folder: Path, width: int, height: int, seed: int = 0) -> list[str]:
    """A colour pair with complementary focus: smoothed noise texture, σ 4 blur on one half each."""
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.uniform(0, 255, (height, width, 3)).astype(np.float32), (1.2, 1.2, 0))
    texture = (texture - texture.mean()) * (60.0 / texture.std()) + 128.0
    blurred = ndimage.gaussian_filter(texture, (4.0, 4.0, 0))
    half = width // 2
    paths = []
    for name, left, right in (("A", texture, blurred), ("B", blurred, texture)):
        image = np.concatenate([left[:, :half], right[:, half:]], axis=1)
        path = folder / f"synthetic_{width}x{height}_{name}.png"
        Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8)).save(path, compress_level=1)
        paths.append(str(path))
    return paths


def fuse_arguments(workload: str, tile: int | None, frames: int, pair: list[str], out: Path) -> list[str]:
    model = "gacn" if workload.startswith("gacn") else "mffgan"
    args = ["fuse", "--model", model]
    if model == "gacn":
        args += ["--weights", str(GACN_WEIGHTS)]
    if workload.startswith("gacn-stack"):
        args += [str(p) for p in sorted(STACK.glob("V*.jpg"))[:frames]]
        args += ["--multi", workload.rsplit("-", 1)[1]]
    else:
        args += pair
    if tile is not None:
        args += ["--tile", str(tile)]
    return args + ["-o", str(out)]


def child(args: list[str]) -> int:
    """The measured process: the command line itself."""
    sys.path.insert(0, str(ROOT))
    from fusion_tf.cli import main

    return main(args)


def launcher(args: list[str]) -> int:
    """Run one child and report its own peak RSS (the launcher has no other children)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", "--", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    found = re.search(r"in ([0-9.]+) s", proc.stdout)
    print(json.dumps({"returncode": proc.returncode, "wall_s": round(wall, 1),
                      "fuse_s": float(found.group(1)) if found else None,
                      "peak_rss_gib": round(peak_kib / 2**20, 3),
                      "error": proc.stderr.strip().splitlines()[-1] if proc.returncode else None}))
    return 0


def measure(workload: str, tile: int | None, frames: int, pair: list[str], folder: Path) -> dict:
    out = folder / f"{workload}-{tile or 'whole'}.png"
    load_before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--launch", "--",
                           *fuse_arguments(workload, tile, frames, pair, out)],
                          check=True, capture_output=True, text=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    n = frames if workload.startswith("gacn-stack") else 2
    row = {"workload": workload, "tile": tile, "images": n, **row}
    if row["fuse_s"] is not None and workload.startswith("gacn-stack"):
        row["s_per_frame"] = round(row["fuse_s"] / n, 2)
    row.update(load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2), cpus=os.cpu_count())
    out.unlink(missing_ok=True)
    return row


def interleaved(rounds: int, tile: int, folder: Path) -> list[dict]:
    import statistics

    import numpy as np

    sys.path.insert(0, str(ROOT))
    from fusion_tf import registry
    from fusion_tf.core.imageio import read_image

    frames = [read_image(p) for p in sorted(STACK.glob("V*.jpg"))[:3]]
    pair = [read_image(p)[:1200, :1600] for p in synthetic_pair(folder, 1600, 1200)]
    cases = {"gacn-calibration-3-frames": ("gacn", str(GACN_WEIGHTS), lambda f: f.fuse_stream(iter(frames))),
             "mffgan-pair-1600x1200": ("mffgan", None, lambda f: f.fuse(pair))}
    rows = []
    for name, (model, weights, work) in cases.items():
        whole, tiled = registry.load_fuser(model, weights), registry.load_fuser(model, weights, tile=tile)
        outputs = [work(whole), work(tiled)]  # warm-up: traces, oneDNN primitives for every window shape
        same = float(np.mean(outputs[0].fused == outputs[1].fused))
        times = {"whole": [], "tiled": []}
        for _ in range(rounds):
            for key, fuser in (("whole", whole), ("tiled", tiled)):
                t0 = time.perf_counter()
                work(fuser)
                times[key].append(time.perf_counter() - t0)
        ratios = [t / w for t, w in zip(times["tiled"], times["whole"])]
        rows.append({"workload": name, "tile": tile, "rounds": rounds,
                     "whole_median_s": round(statistics.median(times["whole"]), 2),
                     "tiled_median_s": round(statistics.median(times["tiled"]), 2),
                     "tiled_over_whole_median": round(statistics.median(ratios), 3),
                     "fused_values_equal": round(same, 6), "load": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--child", "--"]:
        return child(argv[2:])
    if argv[:2] == ["--launch", "--"]:
        return launcher(argv[2:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tile", type=int, default=512, help="core size of the tiled runs (default 512)")
    p.add_argument("--frames", type=int, default=65, help="stack frames (default: all 65)")
    p.add_argument("--pair-size", default="4000x3000", help="W×H of the synthetic pair")
    p.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    p.add_argument("--untiled", choices=("stack", "all", "none"), default="stack",
                   help="which workloads also run whole-image (default: the stack only)")
    p.add_argument("--interleaved", type=int, metavar="K", help="alternate whole/tiled K rounds in one process")
    args = p.parse_args(argv)
    if args.interleaved:
        with tempfile.TemporaryDirectory(prefix="bench_tiling_") as tmp:
            interleaved(args.interleaved, args.tile, Path(tmp))
        return 0
    width, height = (int(v) for v in args.pair_size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="bench_tiling_") as tmp:
        folder = Path(tmp)
        pair = synthetic_pair(folder, width, height) if any(w.endswith("-pair") for w in args.only) else []
        for workload in args.only:
            untiled = args.untiled == "all" or (args.untiled == "stack" and workload.startswith("gacn-stack"))
            for tile in ([None] if untiled else []) + [args.tile]:
                row = measure(workload, tile, args.frames, pair, folder)
                if workload.endswith("-pair"):
                    row["size"] = f"{width}x{height}"
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
