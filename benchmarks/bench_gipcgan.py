"""Time GIPC-GAN inference on a 520×520 Lytro pair (median of N runs after warm-up).

The paper reports 0.1267 s per Lytro pair (520×520) and 0.2226 s per MFI-DRC pair on an RTX 3090
(Table 3).  No weights were published and run time does not depend on weight values, so the
networks are freshly initialised unless ``--weights`` names a trained run.  Measured per variant:

  network      the generator alone, as ``fuse`` runs it (tf.function, dynamic shapes)
  network-xla  the generator with ``jit_compile=True`` (``fuse --jit``)
  fuse-grey    the whole grey ``fuse`` call (normalisation, network, rounding)
  fuse-colour  the whole colour call (studio YCbCr, network, Cb/Cr rule, inverse)

and, unless ``--no-train``, one training iteration (2 D + 1 G, batch 32, 80×80) with and without XLA.

    python benchmarks/bench_gipcgan.py [--runs 5] [--weights RUN] [--no-train]
"""

from __future__ import annotations

import argparse
import os

from timing import SAMPLE_PAIR, median_time  # benchmarks/timing.py


def measure(variant: str, runs: int, weights: str | None, train: bool) -> dict:
    import tensorflow as tf

    from fusion_tf.core.imageio import read_image
    from fusion_tf.weights.resolve import load_network
    from fusion_tf.inference.luma import LumaFuser
    from fusion_tf.models.gipcgan import build_generator

    rgb = [read_image(p) for p in SAMPLE_PAIR]
    grey = [read_image(p, "grey") for p in SAMPLE_PAIR]
    out = {}
    for jit in (False, True):
        g = (load_network("gipcgan" if variant == "paper" else "gipcgan-compact", weights)[0] if weights
             else build_generator(variant))
        fuser = LumaFuser(g, jit_compile=jit)
        out["network-xla" if jit else "network"] = median_time(lambda: fuser.network(grey[0], grey[1]), runs)
        if not jit:
            out["fuse-grey"] = median_time(lambda: fuser.fuse(grey), runs)
            out["fuse-colour"] = median_time(lambda: fuser.fuse(rgb), runs)
    if train:
        from fusion_tf.training.gipcgan import GIPCGANRecipe, GIPCGANTraining

        batch = {k: tf.random.uniform((32, 80, 80, 1), -1, 1, seed=i) for i, k in enumerate(("near", "far", "gt"))}
        for jit in (False, True):
            method = GIPCGANTraining(GIPCGANRecipe(variant=variant), total_steps=57_770)
            step = tf.function(method.iteration, jit_compile=jit)
            out["train-iteration-xla" if jit else "train-iteration"] = median_time(
                lambda: {k: v.numpy() for k, v in step(batch).items()}, max(3, runs // 2), warmup=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=["paper", "count_matched"])
    parser.add_argument("--weights", default=None, help="a trained run (default: fresh initialisation)")
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()
    import tensorflow as tf

    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    results = {v: measure(v, args.runs, args.weights, not args.no_train) for v in args.variants}
    print(f"GIPC-GAN, 520×520 Lytro pair, median of {args.runs} runs on {device}; seconds "
          f"(paper, Table 3: 0.1267 s per Lytro pair on an RTX 3090)")
    print(f"{'workload':<22}" + "".join(f"{v:>15}" for v in args.variants))
    for key in results[args.variants[0]]:
        print(f"{key:<22}" + "".join(f"{results[v][key]:>15.3f}" for v in args.variants))


if __name__ == "__main__":
    main()
