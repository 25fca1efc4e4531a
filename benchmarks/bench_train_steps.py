"""Seconds per training step for every model, with and without XLA, with oneDNN on and off.

Each configuration is the real command line, ``fusion-tf train M --store S --max-steps K``, in a
fresh process (the oneDNN switch is read when TensorFlow is imported), into a throw-away run
folder.  The loop logs the compute time of every step in ``log.csv`` (the batch is already
fetched when the clock starts), so the figure is the training step itself:

  first     step 1: tracing, plus XLA compilation with --jit
  step      median of steps 2..K (steady state)

A "step" is one batch of the recipe: MFF-GAN 2 D + 1 G updates on 32×60² patches; GIPC-GAN
2 D + 1 G on 32×80²; GACN one update on 16×256² crops; MFIF-GAN one critic update on 2×256²
triplets plus one generator update every 5th step (WGAN-GP n_critic = 5), so its ``step`` is the
mean over one whole cycle of 5 steps after the first cycle (steps 6..10: the first generator step
traces the generator update), i.e. seconds per batch consumed.

Stores are the ones the recipes train on (``datasets/README.md``); pass those you have:

    python benchmarks/bench_train_steps.py --mffgan /tmp/store --gipcgan stores/gipcgan_mfiwhu.h5 \\
        --gacn stores/gacn_mfiwhu.h5 --mfifgan stores/mfifgan_mfiwhu.h5 [--steps K] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mffgan", "gipcgan", "gacn", "mfifgan")
DEFAULT_STEPS = {"mffgan": 10, "gipcgan": 6, "gacn": 5, "mfifgan": 10}
CYCLE = {"mfifgan": 5}  # steps per D/G cycle where they differ (one generator update per cycle)


def run_config(model: str, store: str, steps: int, jit: bool, onednn: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench_{model}_") as tmp:
        cmd = [sys.executable, "-m", "fusion_tf.cli", "train", model, "--store", store,
               "--run-dir", str(Path(tmp) / "run"), "--max-steps", str(steps), "--quiet",
               "--jit" if jit else "--no-jit"]
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        with open(Path(tmp) / "run" / "log.csv", newline="") as fh:
            secs = [float(r["seconds"]) for r in csv.DictReader(fh)]
    cycle = CYCLE.get(model, 1)
    if len(secs) < max(2, 2 * cycle):
        raise SystemExit(f"{model}: only {len(secs)} steps logged; use --steps ≥ {max(3, 2 * cycle)}")
    step = statistics.median(secs[1:]) if cycle == 1 else statistics.fmean(secs[cycle:2 * cycle])
    return {"first": secs[0], "step": step, "max": max(secs[1:]),
            "steps": len(secs), "process_wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for m in MODELS:
        parser.add_argument(f"--{m}", metavar="STORE", help=f"{m} training store")
    parser.add_argument("--steps", type=int, help=f"steps per configuration (default per model: {DEFAULT_STEPS})")
    parser.add_argument("--json", help="also write the results here")
    flag = {"on": True, "off": False}
    parser.add_argument("--onednn", nargs="+", choices=flag, default=["on", "off"], help="settings to run")
    parser.add_argument("--xla", nargs="+", choices=flag, default=["off", "on"],
                        help="settings to run (GACN and MFIF-GAN with XLA take minutes per step)")
    args = parser.parse_args()
    stores = {m: getattr(args, m) for m in MODELS if getattr(args, m)}
    args.onednn = [flag[v] for v in args.onednn]
    args.xla = [flag[v] for v in args.xla]
    if not stores:
        parser.error("name at least one store, e.g. --mffgan /tmp/store")
    results = []
    print(f"{os.cpu_count()} CPU cores; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    for model, store in stores.items():
        for onednn in args.onednn:
            for jit in args.xla:
                r = run_config(model, store, args.steps or DEFAULT_STEPS[model], jit, onednn)
                r.update(model=model, xla=jit, onednn=onednn, load=os.getloadavg()[0])
                results.append(r)
                print(f"{model:8s} oneDNN {'on ' if onednn else 'off'} XLA {'on ' if jit else 'off'}  "
                      f"step {r['step']:8.3f} s  (max {r['max']:.3f}, first {r['first']:.2f}, "
                      f"{r['steps']} steps, load {r['load']:.2f})", flush=True)
                if args.json:  # after every configuration: a long run stopped early keeps what it measured
                    Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
