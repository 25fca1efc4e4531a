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

``--compare-mffgan`` instead times MFF-GAN's two formulations of one iteration side by side, in one
process per oneDNN setting: ``literal`` (2 × ``d_step`` + ``g_step``, each recomputing the generator
output: the trainer before issue 18) and ``fused`` (``MFFGANTraining.iteration``, the default: one
generator forward pass shared by the three updates), each with XLA off and on.  Every configuration
has its own trainer from the same seed and its own ``tf.function``; after two warm-up calls
(tracing / XLA compilation) the configurations take turns, one iteration each per round, so a change
in machine load hits all of them alike.  An iteration is timed up to its losses on the host, as the
loop fetches them.  Batches: the first ones of ``--mffgan STORE`` if given, else synthetic 32×60²:

    python benchmarks/bench_train_steps.py --compare-mffgan [--mffgan STORE] [--rounds 12] [--onednn on off]
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


# ----------------------------------------------------------------------------------------------
# --compare-mffgan: the literal vs the fused MFF-GAN iteration, interleaved in one process
# ----------------------------------------------------------------------------------------------
def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} logical cores"


def _compare_batches(store: str | None, n: int):
    import numpy as np
    import tensorflow as tf

    if store:
        from fusion_tf.data.patches import open_patch_store
        from fusion_tf.data.pipeline import patch_dataset

        batches = list(patch_dataset(open_patch_store(store), 32).take(n))
        if len(batches) < n:
            raise SystemExit(f"{store}: fewer than {n} batches of 32")
        return batches
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):  # a sharp and a box-blurred copy, split so both screening maps are non-trivial
        sharp = rng.uniform(-1, 1, (32, 60, 60, 1)).astype(np.float32)
        smooth = tf.nn.avg_pool2d(sharp, 5, 1, "SAME").numpy()
        out.append({"near": tf.constant(np.concatenate([sharp[:16], smooth[16:]])),
                    "far": tf.constant(np.concatenate([smooth[:16], sharp[16:]]))})
    return out


def compare_mffgan_child(store: str | None, rounds: int, xla: list[bool]) -> list[dict]:
    """Runs in the child process (oneDNN is fixed at import); returns one row per configuration."""
    import tensorflow as tf

    from fusion_tf.training.mffgan import MFFGANRecipe, MFFGANTraining

    batches = _compare_batches(store, 4)
    configs = []
    for jit in xla:
        for fused in (False, True):
            method = MFFGANTraining(MFFGANRecipe(), fused_iteration=fused)
            configs.append({"formulation": "fused" if fused else "literal", "xla": jit, "method": method,
                            "fn": tf.function(method.iteration, jit_compile=jit), "times": [], "losses": []})

    def run(c, i):
        t0 = time.perf_counter()
        logs = {k: float(v) for k, v in c["fn"](batches[i % len(batches)]).items()}
        c["times"].append(time.perf_counter() - t0)
        c["losses"].append(logs)

    for c in configs:  # warm-up: tracing (+ XLA compilation), then one more call
        for i in range(2):
            run(c, i)
        c["first"] = c["times"][0]
    load_before = os.getloadavg()
    for r in range(rounds):
        order = configs if r % 2 == 0 else configs[::-1]  # alternate the order: no config always runs first
        for c in order:
            run(c, 2 + r)
    load_after = os.getloadavg()
    rows = []
    for c in configs:
        timed = c["times"][2:]
        rows.append({"formulation": c["formulation"], "xla": c["xla"], "median": statistics.median(timed),
                     "min": min(timed), "max": max(timed), "first": c["first"], "n": len(timed),
                     "losses": c["losses"], "load_before": load_before, "load_after": load_after})
    return rows


def compare_mffgan(store: str | None, rounds: int, xla: list[bool], onednn: list[bool], json_path: str | None) -> int:
    import tensorflow as tf  # only for the version line

    print(f"machine: {machine()}; TensorFlow {tf.__version__}; load average before: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    print(f"MFF-GAN iteration (2 D + 1 G, batch 32, 60×60), {'store ' + store if store else 'synthetic batches'}; "
          f"median of {rounds} interleaved rounds after 2 warm-up calls", flush=True)
    results = []
    for on in onednn:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1" if on else "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
        code = ("import json, sys; sys.path.insert(0, 'benchmarks'); import bench_train_steps as b; "
                f"print('@@' + json.dumps(b.compare_mffgan_child({store!r}, {rounds}, {xla!r})))")
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@")), None)
        if proc.returncode != 0 or line is None:
            raise SystemExit(f"oneDNN {'on' if on else 'off'}: child failed:\n{proc.stderr[-3000:]}")
        rows = json.loads(line[2:])
        by = {(r["formulation"], r["xla"]): r for r in rows}
        for r in rows:
            r["onednn"] = on
            ref = by[("literal", r["xla"])]
            r["speedup"] = ref["median"] / r["median"]
            # same seed, same batches: the two formulations must log the same losses.  Over many
            # iterations float rounding grows (the discriminator's noise-driven biases under Adam; the
            # literal step compiled vs run eagerly drifts alike), so the first 3 are shown on their own
            diffs = [max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-30) for k in a)
                     for a, b in zip(ref["losses"], r["losses"])]
            r["loss_rel_diff_first3"], r["loss_rel_diff_all"] = max(diffs[:3]), max(diffs)
            print(f"oneDNN {'on ' if on else 'off'} XLA {'on ' if r['xla'] else 'off'} {r['formulation']:8s} "
                  f"{r['median']:7.3f} s/iteration  (min {r['min']:.3f}, max {r['max']:.3f}, first {r['first']:.1f} s, "
                  f"n {r['n']})  ×{r['speedup']:.2f} vs literal; losses vs literal: rel diff "
                  f"{r['loss_rel_diff_first3']:.0e} (iterations 1-3), {r['loss_rel_diff_all']:.0e} (all "
                  f"{len(diffs)}); load {r['load_before'][0]:.2f}→{r['load_after'][0]:.2f}", flush=True)
        for r in rows:
            del r["losses"]
        results.extend(rows)
        if json_path:
            Path(json_path).write_text(json.dumps({"machine": machine(), "results": results}, indent=1))
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


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
    parser.add_argument("--compare-mffgan", action="store_true",
                        help="time MFF-GAN's literal vs fused iteration side by side (see above)")
    parser.add_argument("--rounds", type=int, default=12, help="--compare-mffgan: timed rounds (default 12)")
    args = parser.parse_args()
    stores = {m: getattr(args, m) for m in MODELS if getattr(args, m)}
    args.onednn = [flag[v] for v in args.onednn]
    args.xla = [flag[v] for v in args.xla]
    if args.compare_mffgan:
        return compare_mffgan(args.mffgan, args.rounds, args.xla, args.onednn, args.json)
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
