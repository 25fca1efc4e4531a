"""Time MFF-GAN inference on a 520×520 Lytro pair (median of N runs after warm-up).

Measures, for oneDNN on (the package default) and off (each in its own process, because the switch
is read when TensorFlow is imported):
  network      the generator alone, as ``fuse`` runs it (tf.function, dynamic shapes)
  network-xla  the generator with ``jit_compile=True`` (``fuse --jit``)
  fuse-grey    the whole grey ``MFFGANFuser.fuse`` call (normalisation, network, rounding)
  fuse-colour  the whole colour call (studio YCbCr, network, Cb/Cr rule, inverse)
and one training iteration (2 D + 1 G, batch 32, 60×60) with and without XLA.

    python benchmarks/bench_mffgan.py [--runs 7] [--weights PATH] [--no-train]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from timing import SAMPLE_PAIR, median_time  # benchmarks/timing.py


def measure(runs: int, weights: str | None, train: bool) -> dict:
    import tensorflow as tf

    from fusion_tf.core.imageio import read_image
    from fusion_tf import registry

    rgb = [read_image(p) for p in SAMPLE_PAIR]
    grey = [read_image(p, "grey") for p in SAMPLE_PAIR]
    out = {}
    for jit in (False, True):
        fuser = registry.load_fuser("mffgan", weights, jit_compile=jit or None)
        key = "network-xla" if jit else "network"
        out[key] = median_time(lambda: fuser.network(grey[0], grey[1]), runs)
        if not jit:
            out["fuse-grey"] = median_time(lambda: fuser.fuse(grey), runs)
            out["fuse-colour"] = median_time(lambda: fuser.fuse(rgb), runs)
    if train:
        from fusion_tf.training.mffgan import MFFGANRecipe, MFFGANTraining

        batch = {k: tf.random.uniform((32, 60, 60, 1), -1, 1, seed=i) for i, k in enumerate(("near", "far"))}
        for jit in (False, True):
            method = MFFGANTraining(MFFGANRecipe())
            step = tf.function(method.iteration, jit_compile=jit)
            out["train-iteration-xla" if jit else "train-iteration"] = median_time(
                lambda: {k: v.numpy() for k, v in step(batch).items()}, max(3, runs // 2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--weights", default=None, help="default: the shipped checkpoint")
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.runs, args.weights, not args.no_train)))
        return
    results = {}
    for onednn in ("1", "0"):
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, __file__, "--child", "--runs", str(args.runs)]
        cmd += ["--weights", args.weights] if args.weights else []
        cmd += ["--no-train"] if args.no_train else []
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        results[onednn] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"MFF-GAN, 520×520 pair, median of {args.runs} runs, {os.cpu_count()} CPU cores; seconds")
    print(f"{'workload':<22} {'oneDNN on':>10} {'oneDNN off':>11}")
    for key in results["1"]:
        print(f"{key:<22} {results['1'][key]:>10.3f} {results['0'][key]:>11.3f}")


if __name__ == "__main__":
    main()
