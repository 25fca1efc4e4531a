"""Tiled vs whole-image fusion: time ratio per model and image size, where the tiled overhead goes,
and peak memory.

    python benchmarks/bench_tiling.py [--tile 512] [--rounds 2] [--frames 3] [--pair-size 4000x3000]
                                      [--crop 2000x1500] [--cases gacn-calibration gacn-pair mffgan-pair]
    python benchmarks/bench_tiling.py --rss [--only WORKLOAD ...] [--untiled {stack,all,none}]

**Default: one in-process run** (the machine, its load and TensorFlow's settings are printed first).
Whole-image and tiled fusion alternate, ``--rounds`` times per case, and each row gives the median
of the per-round ratios, in wall time and in process CPU time (all threads).  On a shared machine the
CPU-time ratio is the steadier one: it does not count the time other jobs hold the cores.

* ``gacn-calibration``: GACN decision calibration over the first ``--frames`` frames of
  ``../shared/data/stack_v4`` (1600×1200), released weights.
* ``gacn-pair`` / ``mffgan-pair``: a real-data pair at ``--pair-size`` (default 4000×3000): the first
  and last stack frames (near / far focus) upscaled with ``cv2.resize`` (bicubic; 1600×1200 × 2.5).
  Whole-image fusion at 12 Mpx does not fit this machine (23 GB, shared): at the 2000×1500 crop it
  peaks at 6.0 GiB (GACN) and 4.6 GiB (MFF-GAN), so ≈ 22 / 17 GiB at 12 Mpx.  It runs on the central
  ``--crop`` (default 2000×1500, a quarter) instead: that row is a direct tiled/whole comparison, and
  the ``--pair-size`` row compares the tiled time with the crop's whole-image time times the pixel
  ratio (``*_estimated``; conv cost is linear in pixels, see ``whole_cpu_s_per_mpx``).
* GACN rows add where the time goes, CPU seconds per run: ``tiled_stages_cpu_s`` from the tiled
  fuser's own methods — ``prepass`` (SE statistics; :meth:`TiledGACN.feature_scales`), ``ref_sf`` (the
  calibration reference's SF, once), ``sf_windows`` (features and SF of the decision windows,
  the features recomputed when not cached), ``decision`` (decision path and guided filter on the
  windows), ``other`` (numpy windows, stitching, colour, Python) — and ``whole_stages_cpu_s``, the
  same work through graphs of the model's whole-image stages (features + SF of each image, decision
  path per pair).  ``feature_cache``: the budget (``--cache-gib``, default
  :data:`~fusion_tf.inference.gacn_tiled.FEATURE_CACHE_BYTES`) and whether both images' maps fit in it.
* ``fused_equal``: fraction of fused values equal between tiled and whole (where both ran).

``--rss``: every run as the real command line (``fusion_tf.cli.main``) in a fresh process, through
a small launcher (no TensorFlow) that reads ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of its
only child: each figure is that process's peak.  Workloads ``gacn-stack-calibration`` /
``gacn-stack-serial`` (``--frames`` of the stack), ``mffgan-pair`` / ``gacn-pair`` (the ``--pair-size``
pair; ``--untiled all`` adds whole-image runs of those, off by default for the memory above) and
``gacn-crop`` / ``mffgan-crop`` (the ``--crop`` quarter, whole and tiled).  One JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GACN_WEIGHTS = SHARED / "reference" / "gacn" / "weights" / "GACN_state_dict_pytorch_layout.npz"
STACK = SHARED / "data" / "stack_v4"
WORKLOADS = ("gacn-stack-calibration", "gacn-stack-serial", "mffgan-pair", "gacn-pair", "mffgan-crop", "gacn-crop")
CASES = ("gacn-calibration", "gacn-pair", "mffgan-pair")


def size_arg(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def upscaled_pair(width: int, height: int) -> list:
    """First and last stack frame (near / far focus), bicubic-resized to width×height (uint8 RGB)."""
    import cv2

    sys.path.insert(0, str(ROOT))
    from fusion_tf.core.imageio import read_image

    frames = sorted(STACK.glob("V*.jpg"))
    return [cv2.resize(read_image(p), (width, height), interpolation=cv2.INTER_CUBIC) for p in (frames[0], frames[-1])]


def centre_crop(images: list, width: int, height: int) -> list:
    y0, x0 = (images[0].shape[0] - height) // 2, (images[0].shape[1] - width) // 2
    return [im[y0 : y0 + height, x0 : x0 + width].copy() for im in images]


def write_pair(folder: Path, images: list, tag: str) -> list[str]:
    from PIL import Image

    paths = []
    for name, im in zip("AB", images):
        path = folder / f"{tag}_{name}.png"
        Image.fromarray(im).save(path, compress_level=1)
        paths.append(str(path))
    return paths


def machine() -> dict:
    import tensorflow as tf

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"machine": model, "cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(default)"),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "(default)",
            "load": [round(v, 2) for v in os.getloadavg()]}


# ----------------------------------------------------------------------------------------------
# In-process comparison
# ----------------------------------------------------------------------------------------------
class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


class StageTimer:
    """CPU seconds spent in named methods of objects (wrapped on the instance, restored by :meth:`undo`)."""

    def __init__(self):
        self.seconds, self._patched = {}, []

    def wrap(self, obj, attr: str, stage: str) -> None:
        original, own = getattr(obj, attr), attr in vars(obj)

        def timed(*args, **kwargs):
            t0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.process_time() - t0

        setattr(obj, attr, timed)
        self._patched.append((obj, attr, original if own else None))

    def undo(self) -> None:
        for obj, attr, original in reversed(self._patched):
            if original is None:
                del obj.__dict__[attr]
            else:
                setattr(obj, attr, original)
        self._patched.clear()


def instrument_tiled_gacn(fuser, timer: StageTimer) -> None:
    for attr, stage in (("feature_scales", "prepass"), ("_to_sf", "ref_sf"), ("_sf_window", "sf_windows"),
                        ("_decide", "decision")):
        if hasattr(fuser._tiled, attr):  # (an older TiledGACN lacks some)
            timer.wrap(fuser._tiled, attr, stage)


def whole_gacn_stages(model, greys: list, pair: bool) -> dict:
    """CPU seconds of the whole image's own stages for the same work, run once through graphs of
    the model's stage functions (not the fuser's code path): features + SF of every image, and the
    decision path — for calibration, reference vs each further image."""
    import tensorflow as tf

    grey = tf.TensorSpec([1, None, None, 1], tf.float32)
    sf64 = tf.TensorSpec([1, None, None, 64], tf.float32)
    sf_of = tf.function(lambda g: model.spatial_frequency_of(g, training=False), input_signature=[grey])
    decide = tf.function(lambda a, b, g1, g2: model.decide(a, b, g1, g2, training=False),
                         input_signature=[sf64, sf64, grey, grey])
    decide(*(sf_of(g) for g in greys[:2]), *greys[:2])  # warm-up
    seconds = {"features_sf": 0.0, "decision": 0.0}
    sfs = []
    for g in greys:
        t0 = time.process_time()
        sfs.append(sf_of(g))
        seconds["features_sf"] += time.process_time() - t0
    pairs = [(0, 1)] if pair else [(0, j) for j in range(1, len(greys))]
    for i, j in pairs:
        t0 = time.process_time()
        np.asarray(decide(sfs[i], sfs[j], greys[i], greys[j])[1])
        seconds["decision"] += time.process_time() - t0
    return {k: round(v, 2) for k, v in seconds.items()}


def compare(name: str, whole, tiled, work, rounds: int, pixels: int, stages=None) -> dict:
    """``work(fuser)`` whole and tiled, alternating (``whole`` may be None); ``stages``: the whole
    image's stage times for one run (GACN), next to the tiled run's instrumented ones."""
    load_before = os.getloadavg()[0]
    fusers = {"whole": whole, "tiled": tiled}
    results, clocks = {}, {k: [] for k in fusers}
    timer = StageTimer()
    for key, fuser in fusers.items():  # warm-up: traces, oneDNN primitives for every window shape
        if fuser is not None:
            results[key] = work(fuser)
    for _ in range(rounds):
        for key, fuser in fusers.items():
            if fuser is None:
                continue
            if stages is not None and key == "tiled":
                instrument_tiled_gacn(fuser, timer)
            with Clock() as c:
                work(fuser)
            timer.undo()
            clocks[key].append(c)
    row = {"case": name, "pixels": pixels, "rounds": rounds}
    for key in fusers:
        if clocks[key]:
            row[f"{key}_wall_s"] = round(statistics.median(c.wall for c in clocks[key]), 2)
            row[f"{key}_cpu_s"] = round(statistics.median(c.cpu for c in clocks[key]), 2)
    if clocks["whole"]:
        row["whole_cpu_s_per_mpx"] = round(row["whole_cpu_s"] / (pixels / 1e6), 3)
    if clocks["whole"] and clocks["tiled"]:
        for unit in ("wall", "cpu"):
            ratios = [getattr(t, unit) / getattr(w, unit) for t, w in zip(clocks["tiled"], clocks["whole"])]
            row[f"tiled_over_whole_{unit}"] = round(statistics.median(ratios), 3)
        row["fused_equal"] = round(float(np.mean(results["whole"].fused == results["tiled"].fused)), 6)
    if stages is not None:  # per run: the tiled stages averaged over the rounds
        tiled_cpu = sum(c.cpu for c in clocks["tiled"]) / rounds
        per_run = {k: v / rounds for k, v in timer.seconds.items()}
        per_run["other"] = tiled_cpu - sum(per_run.values())
        row["tiled_stages_cpu_s"] = {k: round(v, 2) for k, v in per_run.items()}
        if whole is not None:
            row["whole_stages_cpu_s"] = stages()
        budget = getattr(tiled._tiled, "cache_bytes", 0)
        row["feature_cache"] = {"budget_gib": round(budget / 2**30, 2), "both_images_fit": budget >= 2 * pixels * 256}
    row.update(load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2))
    return row


def in_process(args) -> int:
    sys.path.insert(0, str(ROOT))
    from fusion_tf import registry
    from fusion_tf.core.imageio import read_image

    print(json.dumps(machine()), flush=True)
    weights = str(GACN_WEIGHTS)
    tile = args.tile

    def tiled_fuser(model: str, w):
        fuser = registry.load_fuser(model, w, tile=tile)
        if args.cache_gib is not None and model == "gacn":
            fuser._tiled.cache_bytes = int(args.cache_gib * 2**30)
        return fuser
    if "gacn-calibration" in args.cases:
        frames = [read_image(p) for p in sorted(STACK.glob("V*.jpg"))[: args.frames]]
        work = lambda f: f.fuse_stream(iter(frames), "calibration")  # noqa: E731
        whole = registry.load_fuser("gacn", weights)
        greys = [whole._grey(f) for f in frames]
        row = compare(f"gacn-calibration-{args.frames}-frames-1600x1200", whole,
                      tiled_fuser("gacn", weights), work, args.rounds,
                      frames[0].shape[0] * frames[0].shape[1], lambda: whole_gacn_stages(whole.model, greys, False))
        print(json.dumps({"tile": tile, **row}), flush=True)
    pair_cases = [c for c in args.cases if c.endswith("-pair")]
    if pair_cases:
        (pw, ph), (cw, ch) = args.pair_size, args.crop
        big = upscaled_pair(pw, ph)
        crop = centre_crop(big, cw, ch)
        for case in pair_cases:
            model = case.split("-")[0]
            w = weights if model == "gacn" else None
            whole, tiled = registry.load_fuser(model, w), tiled_fuser(model, w)
            work = lambda f, images: f.fuse(list(images))  # noqa: E731
            stages = None
            if model == "gacn":
                greys = [whole._grey(im) for im in crop]
                stages = lambda: whole_gacn_stages(whole.model, greys, True)  # noqa: E731
            small = compare(f"{model}-pair-{cw}x{ch}", whole, tiled, lambda f: work(f, crop), args.rounds,
                            cw * ch, stages)
            print(json.dumps({"tile": tile, **small}), flush=True)
            large = compare(f"{model}-pair-{pw}x{ph}", None, tiled, lambda f: work(f, big), args.rounds,
                            pw * ph, stages)
            factor = pw * ph / (cw * ch)
            for unit in ("wall", "cpu"):
                large[f"whole_{unit}_s_estimated"] = round(small[f"whole_{unit}_s"] * factor, 2)
                estimate = large[f"whole_{unit}_s_estimated"]
                large[f"tiled_over_whole_{unit}_estimated"] = round(large[f"tiled_{unit}_s"] / estimate, 3)
            large["whole_from"] = f"the {cw}x{ch} crop's whole-image time × {factor:g} (pixels)"
            print(json.dumps({"tile": tile, **large}), flush=True)
    print(json.dumps({"load_end": [round(v, 2) for v in os.getloadavg()],
                      "process_peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}),
          flush=True)
    return 0


# ----------------------------------------------------------------------------------------------
# Peak RSS: the command line in fresh processes
# ----------------------------------------------------------------------------------------------
def fuse_arguments(workload: str, tile: int | None, frames: int, pairs: dict, out: Path) -> list[str]:
    model = "gacn" if workload.startswith("gacn") else "mffgan"
    args = ["fuse", "--model", model]
    if model == "gacn":
        args += ["--weights", str(GACN_WEIGHTS)]
    if workload.startswith("gacn-stack"):
        args += [str(p) for p in sorted(STACK.glob("V*.jpg"))[:frames]]
        args += ["--multi", workload.rsplit("-", 1)[1]]
    else:
        args += pairs[workload.rsplit("-", 1)[1]]
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


def measure(workload: str, tile: int | None, frames: int, pairs: dict, folder: Path) -> dict:
    out = folder / f"{workload}-{tile or 'whole'}.png"
    load_before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--launch", "--",
                           *fuse_arguments(workload, tile, frames, pairs, out)],
                          check=True, capture_output=True, text=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    n = frames if workload.startswith("gacn-stack") else 2
    row = {"workload": workload, "tile": tile, "images": n, **row}
    if row["fuse_s"] is not None and workload.startswith("gacn-stack"):
        row["s_per_frame"] = round(row["fuse_s"] / n, 2)
    row.update(load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2), cpus=os.cpu_count())
    out.unlink(missing_ok=True)
    return row


def rss(args) -> int:
    (pw, ph), (cw, ch) = args.pair_size, args.crop
    with tempfile.TemporaryDirectory(prefix="bench_tiling_") as tmp:
        folder, pairs = Path(tmp), {}
        if any(w.endswith(("-pair", "-crop")) for w in args.only):
            big = upscaled_pair(pw, ph)
            pairs["pair"] = write_pair(folder, big, f"pair_{pw}x{ph}")
            pairs["crop"] = write_pair(folder, centre_crop(big, cw, ch), f"crop_{cw}x{ch}")
            del big
        for workload in args.only:
            untiled = (args.untiled == "all" or workload.endswith("-crop")
                       or (args.untiled == "stack" and workload.startswith("gacn-stack")))
            for tile in ([None] if untiled and args.untiled != "none" else []) + [args.tile]:
                row = measure(workload, tile, args.frames, pairs, folder)
                if workload.endswith("-pair"):
                    row["size"] = f"{pw}x{ph}"
                elif workload.endswith("-crop"):
                    row["size"] = f"{cw}x{ch}"
                print(json.dumps(row), flush=True)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--child", "--"]:
        return child(argv[2:])
    if argv[:2] == ["--launch", "--"]:
        return launcher(argv[2:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tile", type=int, default=512, help="core size of the tiled runs (default 512)")
    p.add_argument("--rounds", type=int, default=2, help="whole/tiled alternations per case (default 2)")
    p.add_argument("--frames", type=int, help="stack frames (default: 3 in-process, 8 with --rss)")
    p.add_argument("--pair-size", type=size_arg, default=(4000, 3000), help="W×H of the upscaled pair")
    p.add_argument("--crop", type=size_arg, default=(2000, 1500),
                   help="W×H of its central crop (the whole-image reference)")
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="in-process cases")
    p.add_argument("--cache-gib", type=float, help="GACN feature-cache budget of the tiled runs (GiB)")
    p.add_argument("--rss", action="store_true", help="peak RSS of the command line in fresh processes")
    p.add_argument("--only", nargs="+", choices=WORKLOADS, help="--rss workloads (implies --rss)")
    p.add_argument("--untiled", choices=("stack", "all", "none"), default="stack",
                   help="--rss: which workloads also run whole-image (default: the stack; crops always)")
    p.add_argument("--interleaved", type=int, metavar="K", help="older spelling of --rounds K")
    args = p.parse_args(argv)
    if args.only or args.rss:
        args.only = args.only or list(WORKLOADS)
        args.frames = args.frames or 8
        return rss(args)
    args.frames = args.frames or 3
    args.rounds = args.interleaved or args.rounds
    return in_process(args)


if __name__ == "__main__":
    raise SystemExit(main())
