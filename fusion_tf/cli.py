"""``fusion-tf``: the command line (thin — parse, call the library, report).

Subcommands: ``models``, ``fuse``, ``prepare <model>``, ``train <model>``, ``evaluate``.  Problems
with the user's input (:class:`~fusion_tf.errors.FusionError`) print one line on stderr and exit
with code 2; outputs are written atomically, so a failed run leaves no partial files.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np

from fusion_tf import __version__
from fusion_tf.errors import FusionError, InputImageError


def _cmd_models(args) -> int:
    from fusion_tf import registry

    print(f"{'model':<16} {'network':<14} {'trainable':>12} {'non-trainable':>14}  shipped weights")
    for name, entry in registry.MODELS.items():
        shipped = "yes" if name in registry.available_models() else "no"
        for net, trainable, frozen in registry.parameter_counts(name):
            print(f"{name:<16} {net:<14} {trainable:>12,} {frozen:>14,}  {shipped}")
        print(f"{'':<16} {entry.title}")
    return 0


def _check_output(path: str | None, kinds: tuple[str, ...], flag: str) -> None:
    if path is not None and Path(path).suffix.lower() not in kinds:
        raise InputImageError(f"{flag} {path}: use one of {', '.join(kinds)}")


def _cmd_fuse(args) -> int:
    from fusion_tf import registry
    from fusion_tf.core.imageio import read_images, write_image, write_npy

    entry = registry.get(args.model)
    _check_output(args.output, (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"), "-o")
    _check_output(args.save_raw, (".npy",), "--save-raw")
    _check_output(args.save_map, (".png", ".tif", ".tiff", ".bmp"), "--save-map")
    if args.save_map and not entry.decision_map:
        raise FusionError(f"--save-map: {args.model} produces no decision map")
    if len(args.images) < 2:
        raise InputImageError(f"need at least 2 images, got {len(args.images)}")
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise InputImageError(f"image not found: {missing[0]}")
    # pairs are read (and checked) before the model loads; stacks stream through fusers that can
    images = read_images(args.images, mode="keep") if len(args.images) == 2 else None
    options = {"output_mode": args.output_mode, "jit_compile": True if args.jit else None,
               "multi": args.multi, "tile": args.tile,
               "backend": None if args.backend == "tf" else args.backend}
    fuser = registry.load_fuser(args.model, args.weights, **options)
    t0 = time.perf_counter()
    if images is None and hasattr(fuser, "fuse_stream"):
        # stacks (e.g. 65 microscope frames): one frame in memory at a time
        from fusion_tf.core.imageio import read_image

        result = fuser.fuse_stream((read_image(p) for p in args.images), args.multi or "calibration")
    else:
        result = fuser.fuse(images if images is not None else read_images(args.images, mode="keep"))
    seconds = time.perf_counter() - t0
    write_image(args.output, result.fused)
    if args.save_raw:
        write_npy(args.save_raw, np.asarray(result.raw, np.float32))
    if args.save_map:
        from fusion_tf.core.color import to_uint8

        write_image(args.save_map, to_uint8(np.clip(result.decision_map, 0, 1) * 255.0))
    print(f"fused {len(args.images)} images with {args.model} in {seconds:.2f} s → {args.output}")
    return 0


def _cmd_export(args) -> int:
    from fusion_tf.export import export_model

    path = export_model(args.model, args.weights, args.output)
    print(f"exported {args.model} to {path} (signature serving_default: img_a, img_b uint8 → fused …)")
    return 0


def _model_subcommands(parser: argparse.ArgumentParser, kind: str, load: bool) -> None:
    """``prepare <model>`` / ``train <model>``: each model module adds its own arguments.

    The modules (and TensorFlow with them) are imported only when ``load`` — i.e. when this very
    subcommand runs — so other commands start fast.
    """
    from fusion_tf import registry

    sub = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name, entry in registry.MODELS.items():
        module_name = getattr(entry, kind)
        if module_name is None:
            continue
        p = sub.add_parser(name, help=entry.title)
        if not load:
            continue
        module = importlib.import_module(module_name)
        getattr(module, f"add_{kind}_arguments")(p)
        if kind == "train":
            _loop_arguments(p)
        p.set_defaults(func=getattr(module, kind))


def _loop_arguments(p: argparse.ArgumentParser) -> None:
    from fusion_tf.training.distribute import PRECISIONS, STRATEGIES  # TF is loaded with the trainers anyway

    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                   help="XLA-compile the training step (default with a GPU: on, the TF/Keras guidance; on CPU: "
                        "per model, as measured on this CPU class with oneDNN on — on for gipcgan, off for "
                        "mffgan, gacn and mfifgan; always off under --strategy mirrored/multiworker)")
    p.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps (default: each epoch)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this global step (resumable; for smoke runs or splitting long recipes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="tf.distribute strategy: default = one device (unchanged behaviour); mirrored = the "
                        "GPUs of this machine (or --replicas logical CPUs); multiworker = every worker in "
                        "TF_CONFIG (docs/distributed.md).  --batch-size stays the GLOBAL batch (the recipe's); "
                        "each replica gets batch/replicas")
    p.add_argument("--replicas", type=int, default=None, metavar="N",
                   help="mirrored: use N GPUs (default all), or without GPUs split the CPU into N logical "
                        "devices (tests the distributed path; no speed-up)")
    p.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=True,
                   help="under a strategy, BatchNorm statistics over the global batch as on one device "
                        "(default); --no-sync-bn: per-replica statistics")
    p.add_argument("--mixed-precision", nargs="?", const="float16", choices=PRECISIONS, default=None,
                   help="mixed precision: float16 (the default when given without a value; needs a GPU; dynamic "
                        "loss scaling) or bfloat16 (GPU or CPU); variables and losses stay float32")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; ``command`` (the first word of argv) says which heavy parts to load."""
    parser = argparse.ArgumentParser(prog="fusion-tf", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fusion_tf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list models and their parameter counts")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("fuse", help="fuse two or more images (first = near focus)")
    p.add_argument("--model", default="mffgan", help="model name (see 'fusion-tf models')")
    p.add_argument("--weights", help="weights to load (default: the shipped checkpoint of the model)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="source images of one size, in order")
    p.add_argument("-o", "--output", required=True, help="fused image (.png, .jpg, .tif, .bmp)")
    p.add_argument("--save-raw", metavar="OUT.npy", help="network's raw float32 output for the (last) pair")
    p.add_argument("--save-map", metavar="MAP.png", help="decision map as an image (decision-map models)")
    p.add_argument("--output-mode", choices=("plain", "faithful"),
                   help="mffgan: plain (default) or faithful (the original's byte-scaling and JPEG round trips)")
    p.add_argument("--multi", choices=("serial", "calibration"), help="gacn: strategy for more than 2 images")
    p.add_argument("--jit", action="store_true", help="XLA-compile inference (pays off for many same-size images)")
    p.add_argument("--tile", type=int, metavar="N",
                   help="fuse in N×N tiles with a halo of the model's receptive field: bounded memory for "
                        "large images, output identical to whole-image fusion")
    p.add_argument("--backend", choices=("tf", "onnxruntime"), default="tf",
                   help="inference engine for the network (onnxruntime: tf2onnx conversion, cached)")
    p.set_defaults(func=_cmd_fuse)

    p = sub.add_parser("export", help="write a SavedModel for TF Serving (pre/post-processing in the graph)")
    p.add_argument("--model", default="mffgan")
    p.add_argument("--weights", help="weights to export (default: the shipped checkpoint of the model)")
    p.add_argument("-o", "--output", required=True, help="new folder for the SavedModel, e.g. serving/mffgan/1")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("prepare", help="build a training store for a model")
    _model_subcommands(p, "prepare", load=command == "prepare")
    p = sub.add_parser("train", help="train (or resume) a model on a prepared store")
    _model_subcommands(p, "train", load=command == "train")

    p = sub.add_parser("evaluate", help="compute fusion metrics over a folder of sources")
    try:
        from fusion_tf.evaluation import command as evaluation_command
    except ImportError:
        p.set_defaults(func=lambda a: _missing("the metrics suite (fusion_tf.evaluation) is not installed"))
    else:
        evaluation_command.add_arguments(p)
        p.set_defaults(func=evaluation_command.run)
    return parser


def _missing(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
