"""Seconds per 520×520 pair for each model's network on each inference backend (median of N runs).

Backends: ``tf`` (the default ``tf.function``, dynamic shapes), ``tf-xla`` (``--jit``; not offered by
GACN's fuser) and ``onnxruntime`` (``--backend onnxruntime``, CPU provider; GACN runs only its feature
extractor there, the rest in TF).  "Network only" is what the fuser calls per pair:

  mffgan, gipcgan, gipcgan-compact   ``fuser.network(Y_a, Y_b)``  (generator on the luma planes)
  mfifgan                            ``fuser.focus_map(A, B)``    (BN-folded generator, RGB)
  gacn                               ``fuser.decision_maps(A, B)`` (features, SF, decision, guided filter)

Weights do not change the cost: models without shipped weights are timed with freshly initialised
ones (GACN with the released weights when ``../shared`` is there).  The one-off tf2onnx conversion
(cached afterwards) is timed into an empty cache and reported separately, as is the machine load,
because on a shared machine the numbers are only comparable with each other.

    python benchmarks/bench_backends.py [--runs 5] [--models mffgan gacn ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from timing import ROOT, SAMPLE_PAIR, median_time  # benchmarks/timing.py

MODELS = ("mffgan", "gipcgan", "gipcgan-compact", "gacn", "mfifgan")
BACKENDS = ("tf", "tf-xla", "onnxruntime")
GACN_WEIGHTS = ROOT.parent / "shared/reference/gacn/weights/GACN_state_dict_pytorch_layout.npz"


def _weights(model: str, folder: Path) -> str | None:
    """Shipped / released weights where they exist, else a fresh network saved as .weights.h5."""
    from fusion_tf import registry

    entry = registry.get(model)
    if entry.default_weights is not None and entry.default_weights.is_file():
        return None
    if model == "gacn" and GACN_WEIGHTS.is_file():
        return str(GACN_WEIGHTS)
    nets = registry.build_networks(model)
    net = nets["generator"] if "generator" in nets else nets["gacn"]
    path = folder / f"{model}.weights.h5"
    net.save_weights(str(path))
    return str(path)


def _workload(model: str, fuser, pair, luma):
    if model == "mfifgan":
        return lambda: fuser.focus_map(*pair)
    if model == "gacn":
        return lambda: fuser.decision_maps(*pair)
    return lambda: fuser.network(*luma)


def measure(models, runs: int) -> dict:
    from fusion_tf import registry
    from fusion_tf.core.color import rgb_to_y_studio
    from fusion_tf.core.imageio import read_image

    pair = [read_image(p) for p in SAMPLE_PAIR]
    luma = [rgb_to_y_studio(x) for x in pair]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FUSION_TF_CACHE"] = str(Path(tmp) / "cache")  # empty: the conversion is timed
        for model in models:
            weights = _weights(model, Path(tmp))
            row = {}
            for backend in BACKENDS:
                options = {"backend": "onnxruntime"} if backend == "onnxruntime" else {}
                if backend == "tf-xla":
                    if "jit_compile" not in registry.get(model).fuser_options:
                        row[backend] = None
                        continue
                    options = {"jit_compile": True}
                t0 = time.perf_counter()
                fuser = registry.load_fuser(model, weights, **options)
                if backend == "onnxruntime":
                    row["onnx-conversion"] = time.perf_counter() - t0
                n = max(2, runs // 2) if model == "mfifgan" else runs  # ~14 s a pair on 2 quiet cores
                row[backend] = median_time(_workload(model, fuser, pair, luma), n, warmup=1)
                print(f"  {model:<16} {backend:<12} {row[backend]:.3f} s", flush=True)
            results[model] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    import fusion_tf  # noqa: F401  (oneDNN switch before TensorFlow loads, as the CLI does)

    load_before = os.getloadavg()[0]
    results = measure(args.models, args.runs)
    load_after = os.getloadavg()[0]
    cores = os.cpu_count()
    print(f"\nnetwork only, one 520×520 pair, median of {args.runs} runs (MFIF-GAN: {max(2, args.runs // 2)}); "
          f"seconds; {cores} CPU cores, 1-min load {load_before:.1f} → {load_after:.1f}"
          + ("  [CONTENDED: load above the core count, compare rows only with each other]"
             if max(load_before, load_after) > cores else ""))
    print(f"{'model':<16} {'tf':>8} {'tf-xla':>8} {'onnxruntime':>12} {'conversion (once)':>18}")
    for model, row in results.items():
        cells = [f"{row[b]:.3f}" if row.get(b) is not None else "n/a" for b in BACKENDS]
        print(f"{model:<16} {cells[0]:>8} {cells[1]:>8} {cells[2]:>12} {row['onnx-conversion']:>17.1f}s")
    if args.json:
        args.json.write_text(json.dumps({"cores": cores, "load": [load_before, load_after], "runs": args.runs,
                                         "seconds": results}, indent=2))


if __name__ == "__main__":
    main()
