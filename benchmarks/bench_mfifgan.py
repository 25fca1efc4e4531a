"""Seconds per 520×520 pair for MFIF-GAN inference (2.43 TFLOPs of generator compute), TF vs PyTorch.

Measured in one process on the same weights (random, exported to PyTorch layout with the original keys):
  tf-fuser      MFIFGANFuser.focus_map: BN-folded graph, six planes batched, tf.function with dynamic H, W
                (what ``fusion-tf fuse --model mfifgan`` runs)
  tf-fuse       the whole ``fuse`` call (normalisation, network, size fix, SRR, selection)
  tf-keras      the plain Keras generator, ``training=False``, in a tf.function with dynamic H, W
  torch         an independent PyTorch re-implementation (benchmarks/_torch_mfifgan.py), eval, no_grad,
                the original's six sequential encoder calls — only when torch is installed
Reports the median of ``--runs`` after one warm-up, and the largest |Δ| between TF and PyTorch maps.

    python benchmarks/bench_mfifgan.py [--runs 3] [--size 520] [--no-torch]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

from timing import SAMPLE_PAIR, median_time  # benchmarks/timing.py

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=520, help="crop/resize the sample pair to SIZE×SIZE")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--skip-keras", action="store_true", help="skip the unfolded Keras variant")
    args = parser.parse_args()

    import fusion_tf  # noqa: F401  (sets TF_ENABLE_ONEDNN_OPTS before TF loads)
    import tensorflow as tf

    from fusion_tf.core.imageio import read_image
    from fusion_tf.inference.mfifgan import MFIFGANFuser, to_network_range
    from fusion_tf.models.mfifgan import build_generator

    imgs = [read_image(p, "rgb") for p in SAMPLE_PAIR]
    s = args.size
    imgs = [np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(im).resize((s, s)), np.uint8)
            if im.shape[:2] != (s, s) else im for im in imgs]
    tf.keras.utils.set_random_seed(0)
    g = build_generator()
    fuser = MFIFGANFuser(generator=g)
    out: dict = {"size": s, "machine": platform.processor() or platform.machine(),
                 "tf_intra_threads": tf.config.threading.get_intra_op_parallelism_threads()}
    out["tf-fuser"] = median_time(lambda: fuser.focus_map(*imgs), args.runs, warmup=1)
    out["tf-fuse"] = median_time(lambda: fuser.fuse(imgs), args.runs, warmup=1)
    x = [tf.constant(to_network_range(im)) for im in imgs]
    if not args.skip_keras:
        spec = tf.TensorSpec((None, None, None, 3), tf.float32)
        keras_fn = tf.function(lambda a, b: g([a, b], training=False), input_signature=[spec, spec])
        out["tf-keras"] = median_time(lambda: keras_fn(*x).numpy(), args.runs, warmup=1)
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            out["torch"] = None
        else:
            sys.path.insert(0, str(HERE))
            from _torch_mfifgan import TorchGenerator, load

            from fusion_tf.weights.mfifgan_npz import generator_state_dict

            tg = load(TorchGenerator(), generator_state_dict(g)).eval()
            ta, tb = (torch.from_numpy(np.transpose(v.numpy(), (0, 3, 1, 2)).copy()) for v in x)

            def run_torch():
                with torch.no_grad():
                    return tg(ta, tb)

            out["torch"] = median_time(run_torch, args.runs, warmup=1)
            out["torch_version"] = torch.__version__
            out["torch_threads"] = torch.get_num_threads()
            ref = run_torch().numpy()[0, 0]
            out["max_abs_diff_tf_vs_torch"] = float(np.max(np.abs(fuser.focus_map(*imgs) - ref)))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
