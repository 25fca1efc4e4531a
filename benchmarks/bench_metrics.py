"""Per-metric timing of ``fusion_tf.metrics`` on one real 520x520 Lytro pair.

    python benchmarks/bench_metrics.py [--pair 01] [--repeat 3] [--metrics qp,fmi_dct] [--workers 1,2]

Sources: ``../shared/data/lytro/pairs/lytro-NN-{A,B}.jpg``; fused: MFIF-GAN's published result
for that pair (``../shared/reference/mfif_gan/published/Lytro/Lytro_fusion_N.jpg``) when present,
else round((A + B)/2). Prints the median wall and CPU time of ``--repeat`` runs per metric and
the total (single process). ``--workers`` also times the whole suite on the pair through the
``fusion-tf evaluate`` runner (image decoding included), which splits one pair's metrics over the
worker processes. Pin with ``taskset -c 0,1`` / ``OMP_NUM_THREADS=1`` to emulate a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from fusion_tf import metrics as M  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from timing import median_time  # noqa: E402


def load(pair: str):
    pairs = SHARED / "data" / "lytro" / "pairs"
    a = M.rgb2gray(np.asarray(Image.open(pairs / f"lytro-{pair}-A.jpg")))
    b = M.rgb2gray(np.asarray(Image.open(pairs / f"lytro-{pair}-B.jpg")))
    fused_path = SHARED / "reference" / "mfif_gan" / "published" / "Lytro" / f"Lytro_fusion_{int(pair)}.jpg"
    srcs = (pairs / f"lytro-{pair}-A.jpg", pairs / f"lytro-{pair}-B.jpg")
    if fused_path.exists():
        f = M.rgb2gray(np.asarray(Image.open(fused_path)))
        return a, b, f, str(fused_path.relative_to(SHARED.parent)), (srcs, fused_path)
    return a, b, M.matlab_round((a + b) / 2), "round((A+B)/2)", None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", default="01")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--metrics", default=None, help="comma-separated ids (default: the evaluate defaults)")
    ap.add_argument("--workers", default="", help="comma-separated worker counts for the runner timing, e.g. 1,2")
    args = ap.parse_args(argv)
    ids = M.resolve(args.metrics)
    a, b, f, label, paths = load(args.pair)
    print(f"pair lytro-{args.pair} {f.shape[1]}x{f.shape[0]}, fused = {label}, median of {args.repeat} runs")
    print(f"{'metric':<12} {'value':>12} {'wall ms':>9} {'cpu ms':>9}")
    tot_w = tot_c = 0.0
    for mid in ids:
        walls, cpus = [], []
        for _ in range(args.repeat):
            M.clear_caches()  # time cold runs (qp caches the sources' phase congruency)
            w0, c0 = time.perf_counter(), time.process_time()
            v = M.METRICS[mid](a, b, f)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        w, c = statistics.median(walls), statistics.median(cpus)
        tot_w += w
        tot_c += c
        print(f"{mid:<12} {v:12.6f} {w * 1e3:9.1f} {c * 1e3:9.1f}")
    print(f"{'total':<12} {'':>12} {tot_w * 1e3:9.1f} {tot_c * 1e3:9.1f}")
    if args.workers and paths is not None:
        from fusion_tf.evaluation import runner

        job = runner.Job("bench", f"lytro-{args.pair}", tuple(map(str, paths[0])), str(paths[1]))
        for n in (int(w) for w in args.workers.split(",")):
            # cold caches: forked workers would inherit this process's cached source features
            wall = median_time(lambda: (M.clear_caches(), runner.run_jobs([job], ids, workers=n, progress=False)),
                               runs=args.repeat, warmup=0)
            print(f"evaluate runner, {len(ids)} metrics on 1 pair, {n} worker(s): "
                  f"{wall:.2f} s wall (median of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
