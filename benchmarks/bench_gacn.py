"""GACN inference speed and memory: one 520×520 pair, and the 65-frame 1600×1200 focus stack.

    python benchmarks/bench_gacn.py [--repeat 5] [--frames 65] [--skip-pair] [--skip-stack]

* pair: median seconds of ``--repeat`` fusions of ``gacn_test26/color_lytro_01`` (after one warm-up
  call that traces the graph); the original PyTorch code takes 6.5 s on the 2-core CI CPU.
* stack: ``../shared/data/stack_v4/V001..`` (first ``--frames``), serial vs decision calibration, each in a
  fresh subprocess so its peak RSS (``ru_maxrss``) is its own.  Frames are read lazily, one at a time.
  Reported: total seconds, seconds per frame (total / frames), peak RSS; the paper reports calibration
  at 0.69× serial time.

Weights: the released ``GACN_state_dict_pytorch_layout.npz`` from ``../shared``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WEIGHTS = SHARED / "reference" / "gacn" / "weights" / "GACN_state_dict_pytorch_layout.npz"
sys.path.insert(0, str(ROOT))


def bench_pair(repeat: int) -> dict:
    from fusion_tf.core.imageio import read_image
    from fusion_tf import registry

    fuser = registry.load_fuser("gacn", WEIGHTS)
    pairs = SHARED / "data" / "gacn_test26"
    a, b = read_image(pairs / "color_lytro_01_1.png"), read_image(pairs / "color_lytro_01_2.png")
    t0 = time.perf_counter()
    fuser.fuse([a, b])
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fuser.fuse([a, b])
        times.append(time.perf_counter() - t0)
    return {"pair_520_first_call_s": round(first, 3), "pair_520_median_s": round(statistics.median(times), 3),
            "pair_520_min_s": round(min(times), 3), "repeat": repeat}


def bench_stack(strategy: str, frames: int) -> dict:
    from fusion_tf.core.imageio import read_image
    from fusion_tf import registry

    fuser = registry.load_fuser("gacn", WEIGHTS)
    paths = sorted((SHARED / "data" / "stack_v4").glob("V*.jpg"))[:frames]
    t0 = time.perf_counter()
    result = fuser.fuse_stream((read_image(p) for p in paths), strategy)
    seconds = time.perf_counter() - t0
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    return {"strategy": strategy, "frames": len(paths), "size": f"{result.fused.shape[1]}x{result.fused.shape[0]}",
            "total_s": round(seconds, 1), "s_per_frame": round(seconds / len(paths), 2), "peak_rss_gib": round(rss_gib, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--frames", type=int, default=65)
    p.add_argument("--skip-pair", action="store_true")
    p.add_argument("--skip-stack", action="store_true")
    p.add_argument("--stack-only", choices=("serial", "calibration"), help=argparse.SUPPRESS)  # subprocess mode
    args = p.parse_args(argv)
    if args.stack_only:
        print(json.dumps(bench_stack(args.stack_only, args.frames)))
        return 0
    if not args.skip_pair:
        print(json.dumps(bench_pair(args.repeat)), flush=True)
    if not args.skip_stack:
        rows = {}
        for strategy in ("serial", "calibration"):
            out = subprocess.run([sys.executable, __file__, "--stack-only", strategy, "--frames", str(args.frames)],
                                 check=True, capture_output=True, text=True).stdout
            rows[strategy] = json.loads(out.strip().splitlines()[-1])
            print(json.dumps(rows[strategy]), flush=True)
        ratio = rows["calibration"]["total_s"] / rows["serial"]["total_s"]
        print(json.dumps({"calibration_over_serial_time": round(ratio, 3), "paper": 0.69}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
