"""Start-up cost of one ``fusion-tf fuse`` process on one pair, side by side with one enfuse call.

    python benchmarks/bench_startup.py [--runs 5] [--model mffgan] [--phases] [--before DIR]

A one-pair command is dominated by start-up, not by the network: this measures whole processes.
Rows, each the median of ``--runs`` fresh processes, all interleaved round by round in this one run
(so a shared, noisy machine slows every row alike; the machine and its load average are printed):

* ``enfuse`` — Hugin's focus-stacking recipe, one call (skipped when ``enfuse`` is not on PATH);
* ``python + numpy`` — the floor any Python command pays here;
* ``fusion-tf fuse --backend onnxruntime`` with the conversion already cached (a first, untimed run
  converts it into a temporary ``FUSION_TF_CACHE``): TensorFlow is never imported;
* ``fusion-tf fuse`` — the default TF path.

``--before DIR``: the two fusion-tf rows also for another checkout (e.g. ``git archive HEAD | tar -x
-C DIR``), run from DIR so its package is imported.  ``--phases``: where the TF path's time goes,
measured inside fresh processes (median per phase), for this tree and ``--before``.
Pair: ``datasets/samples/lytro-01-A.jpg``/``-B.jpg`` (520×520 colour).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR = [ROOT / "datasets/samples/lytro-01-A.jpg", ROOT / "datasets/samples/lytro-01-B.jpg"]
#: Hugin's focus-stacking recipe (as in bench_peers.py)
ENFUSE_FOCUS = ["--exposure-weight=0", "--saturation-weight=0", "--contrast-weight=1", "--hard-mask",
                "--contrast-window-size=5"]

#: runs inside a fresh process (cwd = the tree measured): the TF path of ``fuse`` step by step, with
#: the same calls the CLI makes; prints {phase: seconds} as JSON
PHASES = r"""
import json, sys, time
marks = [("", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
import numpy
mark("import numpy")
from fusion_tf import cli, tf_runtime
try:
    tf_runtime.configure(lean=True)
except TypeError:  # a tree without the lean switch
    tf_runtime.configure()
cli.build_parser("fuse")
mark("import CLI + parser")
import tensorflow
mark("import tensorflow (+ keras)")
from fusion_tf import registry
from fusion_tf.weights import resolve
model, a, b, out = sys.argv[1:5]
entry, source = registry.get(model), resolve.resolve(model)
network = resolve._call(entry.inference_network, source)
mark("build model")
resolve.load_into(model, network, source)
mark("load weights")
fuser = registry._resolve(entry.fuser)(network)
from fusion_tf.core.imageio import read_images, write_image
pair = read_images([a, b])
mark("fuser + read pair")
fuser.fuse(pair)
mark("first fuse (trace)")
result = fuser.fuse(pair)
mark("steady fuse")
write_image(out, result.fused)
mark("PNG encode")
print(json.dumps({n: t - marks[i][1] for i, (n, t) in enumerate(marks[1:])}))
"""


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return f"{cpu}, {os.cpu_count()} cores"


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return seconds, proc.stdout


def tree_env(tree: Path, cache: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(tree), "FUSION_TF_CACHE": str(cache)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="mffgan", choices=("mffgan", "gipcgan"))
    parser.add_argument("--phases", action="store_true", help="also break the TF path down into phases")
    parser.add_argument("--before", type=Path, metavar="DIR", help="another checkout to measure side by side")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_startup-"))
    trees = {"": ROOT} | ({" (before)": args.before.resolve()} if args.before else {})
    fuse = [sys.executable, "-m", "fusion_tf.cli", "fuse", "--model", args.model, *map(str, PAIR), "--quiet"]
    rows: dict[str, tuple[list[str], Path, dict]] = {}
    enfuse = shutil.which("enfuse")
    if enfuse:
        rows["enfuse (one call)"] = ([enfuse, *ENFUSE_FOCUS, "-o", str(work / "enfuse.tif"), *map(str, PAIR)],
                                     work, dict(os.environ))
    rows["python + numpy"] = ([sys.executable, "-c", "import numpy"], work, dict(os.environ))
    for label, tree in trees.items():
        env = tree_env(tree, work / f"cache{len(rows)}")
        timed([*fuse, "-o", str(work / "convert.png"), "--backend", "onnxruntime"], tree, env)  # converts, untimed
        rows[f"fuse --backend onnxruntime, cached{label}"] = (
            [*fuse, "-o", str(work / f"ort{len(rows)}.png"), "--backend", "onnxruntime"], tree, env)
        rows[f"fuse (TF){label}"] = ([*fuse, "-o", str(work / f"tf{len(rows)}.png")], tree, env)
    phase_cmds = {label: ([sys.executable, "-c", PHASES, args.model, *map(str, PAIR), str(work / "phases.png")],
                          tree, tree_env(tree, work / "cache-phases")) for label, tree in trees.items()} \
        if args.phases else {}

    load_before = os.getloadavg()
    times = {name: [] for name in rows}
    phases = {label: [] for label in phase_cmds}
    for _ in range(args.runs):  # interleaved: round r runs every row once
        for name, (cmd, cwd, env) in rows.items():
            times[name].append(timed(cmd, cwd, env)[0])
        for label, (cmd, cwd, env) in phase_cmds.items():
            seconds, out = timed(cmd, cwd, env)
            phases[label].append({**json.loads(out.strip().splitlines()[-1]), "_wall": seconds})
    load_after = os.getloadavg()

    print(f"\nMachine: {machine()}; load average (1/5/15 min) before {'/'.join(f'{x:.2f}' for x in load_before)}, "
          f"after {'/'.join(f'{x:.2f}' for x in load_after)}")
    print(f"Pair: {PAIR[0].name}/{PAIR[1].name} (520×520), model {args.model}, median of {args.runs} "
          f"processes per row, rows interleaved\n")
    base = statistics.median(times["enfuse (one call)"]) if enfuse else None
    print("| command | median s | min s | × enfuse |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        ratio = f"{median / base:.1f}" if base else "—"
        print(f"| {name} | {median:.2f} | {min(values):.2f} | {ratio} |")
    if phases:
        names = list(next(iter(phases.values()))[0])
        print(f"\nTF path of one `fuse` process, phase by phase (median of {args.runs} processes)\n")
        print("| phase | " + " | ".join(f"s{label}" for label in phases) + " |")
        print("|---|" + "---:|" * len(phases))
        for n in names:
            label = "whole process (wall)" if n == "_wall" else n
            print(f"| {label} | " + " | ".join(f"{statistics.median(r[n] for r in runs):.2f}"
                                             for runs in phases.values()) + " |")
        print("| python start + exit (wall − phases) | " + " | ".join(
            f"{statistics.median(r['_wall'] - sum(v for k, v in r.items() if k != '_wall') for r in runs):.2f}"
            for runs in phases.values()) + " |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
