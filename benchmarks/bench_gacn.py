"""GACN inference speed and memory: one 520×520 pair, and the 65-frame 1600×1200 focus stack.

    python benchmarks/bench_gacn.py [--repeat 5] [--frames 65] [--skip-pair] [--skip-stack] [--stages] [--ops]

* pair: median seconds of ``--repeat`` fusions of ``gacn_test26/color_lytro_01`` (after one warm-up
  call that traces the graph); the original PyTorch code takes 6.5 s on the 2-core CI CPU.
* stages (``--stages``): where one calibration frame's time goes at 1600×1200 (V001 as the reference,
  V002 as the frame), each stage as its own graph, minimum of ``--repeat`` runs after a warm-up: read
  and grey conversion, features, SF, the attended bimap, each decision conv and spatial SE, the boundary
  guided filter, the streaming argmax, and the whole per-frame graph the fuser runs.
* ops (``--ops``): the same per-frame graph under TensorFlow's profiler, its kernel time summed by op
  type (oneDNN convolutions, depthwise window sums, the spatial SEs' convolutions, element-wise ops
  and copies).  Kernels on TF's two inter-op threads may overlap, so the sum exceeds the wall time;
  the shares are what count.  Reads the trace with the ``xplane_pb2`` TF ships.
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


def bench_stages(repeat: int) -> dict:
    import tensorflow as tf

    from fusion_tf import registry
    from fusion_tf.core.imageio import read_image
    from fusion_tf.inference.gacn import CalibrationArgmax
    from fusion_tf.models import gacn as G

    fuser = registry.load_fuser("gacn", WEIGHTS)
    m = fuser.model
    ref_path, path = sorted((SHARED / "data" / "stack_v4").glob("V*.jpg"))[:2]
    ref_grey = tf.constant(fuser._grey(read_image(ref_path)))
    image = read_image(path)
    grey = tf.constant(fuser._grey(image))
    rows: dict = {}

    def stage(label, fn, *args):
        fn(*args)  # trace / warm up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn(*args)
            if hasattr(out, "numpy"):
                out.numpy()
            times.append(time.perf_counter() - t0)
        rows[label] = round(min(times), 3)
        print(f"{label:40s} {rows[label]:7.3f} s", flush=True)
        return out

    graph = lambda fn, *specs: tf.function(fn, input_signature=list(specs))  # noqa: E731
    grey_spec = tf.TensorSpec([1, None, None, 1], tf.float32)
    spec = lambda c: tf.TensorSpec([1, None, None, c], tf.float32)  # noqa: E731
    stage("read JPEG", read_image, path)
    stage("grey input (float64 → float32)", fuser._grey, image)
    feats = stage("features (4 conv blocks + channel SE)", graph(lambda g: m.extract_features(g), grey_spec), grey)
    stage("spatial frequency (64 channels)", graph(G.spatial_frequency, spec(64)), feats)
    sf_ref = fuser._sf_blocks(ref_grey)
    x = stage("attended bimap (features, SF, bimap, se_4)",
              graph(lambda r, g: m.attended_bimap_against(r, g), [spec(16)] * 4, grey_spec), sf_ref, grey)
    for i, (conv, se) in enumerate(m.decision_stages, start=1):
        c = stage(f"decision conv{i} ({conv.in_channels}→{conv.conv.filters}) + ReLU + BN",
                  graph(lambda t, conv=conv: conv(t, training=False), spec(conv.in_channels)), x)
        x = stage(f"  spatial SE se_{i + 4}", graph(lambda t, se=se: se(t), spec(conv.conv.filters)), c)
    origin = tf.sigmoid(G.STEEPNESS * x)
    stage("boundary guided filter", graph(lambda o, a, b: G.boundary_guided_filter(o, a, b)[0],
                                          spec(1), grey_spec, grey_spec), origin, ref_grey, grey)
    mask = stage("whole frame (the fuser's one graph)", fuser._calibration_map, sf_ref, ref_grey, grey)
    selector = CalibrationArgmax(read_image(ref_path))
    stage("streaming argmax (numpy)", selector.add, mask.numpy()[0, ..., 0], image)
    return rows


def bench_ops(repeat: int) -> dict:
    import collections
    import glob
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from fusion_tf import registry
    from fusion_tf.core.imageio import read_image

    fuser = registry.load_fuser("gacn", WEIGHTS)
    ref_path, path = sorted((SHARED / "data" / "stack_v4").glob("V*.jpg"))[:2]
    ref_grey, grey = (tf.constant(fuser._grey(read_image(p))) for p in (ref_path, path))
    sf_ref = fuser._sf_blocks(ref_grey)
    fuser._calibration_map(sf_ref, ref_grey, grey).numpy()  # trace, warm up
    walls = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fuser._calibration_map(sf_ref, ref_grey, grey).numpy()
        walls.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory(prefix="bench_gacn_ops_") as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(repeat):
            fuser._calibration_map(sf_ref, ref_grey, grey).numpy()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]).read_bytes())
    kinds: dict = collections.defaultdict(float)
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name or "::" in name:  # executor bookkeeping (ExecutorState::Process), not a kernel
                    continue
                op = name.split(":")[-1]
                if op.endswith("Conv2D") and name.startswith("se_"):
                    op = "spatial SE " + op
                kinds[op] += event.duration_ps / 1e12 / repeat
    total = sum(kinds.values())
    rows = {op: {"s": round(t, 3), "share": round(t / total, 3)} for op, t in sorted(kinds.items(), key=lambda kv: -kv[1])
            if t >= 0.001}
    for op, row in rows.items():
        print(f"{op:45s} {row['s']:7.3f} s  {100 * row['share']:5.1f} %", flush=True)
    return {"frame_wall_s": round(min(walls), 3), "kernel_s": round(total, 3), "by_op": rows}


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
    p.add_argument("--stages", action="store_true", help="only the per-stage profile of one calibration frame")
    p.add_argument("--ops", action="store_true", help="only the per-op-type kernel time of one calibration frame")
    p.add_argument("--stack-only", choices=("serial", "calibration"), help=argparse.SUPPRESS)  # subprocess mode
    args = p.parse_args(argv)
    if args.stages:
        print(json.dumps(bench_stages(args.repeat)))
        return 0
    if args.ops:
        print(json.dumps(bench_ops(args.repeat)))
        return 0
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
