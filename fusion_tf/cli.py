"""``fusion-tf``: the command line (thin — parse, call the library, report).

Subcommands: ``models``, ``fuse``, ``export``, ``prepare <model>``, ``train <model>``, ``evaluate``.

Contract with the user: problems with their input (:class:`~fusion_tf.errors.FusionError`, bad
option values, unreadable files) print ONE line on stderr and exit with code 2, checked before any
model loads where possible; outputs are written atomically, so a failed run leaves no partial file;
an unexpected error is one line too (exit 1), with the traceback behind ``--debug``.  TensorFlow's
C++ log lines are silenced unless ``--verbose`` (:mod:`fusion_tf.tf_runtime`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np

from fusion_tf import __version__, memory
from fusion_tf.errors import FusionError, InputImageError
from fusion_tf.registry import DEFAULT_MODEL


def _cmd_models(args) -> int:
    from fusion_tf import presets, registry

    print(f"{'model':<16} {'network':<14} {'trainable':>12} {'non-trainable':>14}")
    parameters = {}
    for name, entry in registry.MODELS.items():
        for net, trainable, frozen in registry.parameter_counts(name):
            print(f"{name:<16} {net:<14} {trainable:>12,} {frozen:>14,}")
            if net == entry.checkpoint_key:
                parameters[name] = trainable
        default = presets.default_for(name)
        print(f"{'':<16} {entry.title}")
        print(f"{'':<16} default weights: "
              + (f"preset {default.name}" if default and default.available else "none shipped (pass --weights)"))
    print(f"\n{'preset':<24} {'model':<8} {'parameters':>11}  weights")
    report = presets.load_report()
    for p in presets.all_presets().values():
        if p.origin == "shipped":
            where = (f"shipped, card {p.card}" if p.card else "shipped") if p.available else "missing from checkpoints/"
        elif p.available:
            where = f"imported: {p.file.parent}"
        else:
            where = f"not imported: {p.import_command()}"
        print(f"{p.name:<24} {p.model:<8} {parameters.get(p.model, 0):>11,}  {where}")
        print(f"{'':<4}status: {p.status}")
        print(f"{'':<4}score:  {presets.headline(p, report)}")
    return 0


def _cmd_import_weights(args) -> int:
    from fusion_tf import presets

    meta = presets.import_weights(args.model, args.path, args.name, force=args.force)
    print(f"imported {args.model} weights ({meta['source_format']}, sha256 {meta['source_sha256'][:12]}) as preset "
          f"{args.name} → {presets.presets_dir() / args.name}; use --weights {args.name}")
    return 0


IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _check_suffix(path: str | None, kinds: tuple[str, ...], flag: str) -> None:
    if path is not None and Path(path).suffix.lower() not in kinds:
        raise InputImageError(f"{flag} {path}: use one of {', '.join(kinds)}")


def _cmd_fuse(args) -> int:
    from fusion_tf import api, presets, registry
    from fusion_tf.weights.resolve import resolve
    from fusion_tf.core.imageio import check_outputs

    # everything that can be checked without TensorFlow is checked before the model loads
    entry = registry.get(args.model)
    options = registry.check_options(
        args.model, output_mode=args.output_mode, jit_compile=True if args.jit else None, multi=args.multi,
        tile=args.tile if isinstance(args.tile, int) else None, tile_cache=args.tile_cache,
        backend=None if args.backend == "tf" else args.backend)
    if args.tile_cache is not None and args.tile == "none":
        raise FusionError("--tile-cache GIB goes with --tile N (or auto)")
    if args.tile_cache is not None and args.backend != "tf":
        raise FusionError("--tile-cache applies to the TF backend (the ONNX path recomputes features per tile)")
    if args.batch is not None:
        code = _fuse_batch(args, options)
        note = None if args.quiet else presets.note_for(resolve(args.model, args.weights))
        if note:
            print(f"note: {note}", file=sys.stderr)
        return code
    if args.skip_existing:
        raise FusionError("--skip-existing belongs to --batch")
    if args.engine != "local" or args.beam_options is not None:
        raise FusionError("--engine/--beam-options belong to --batch")
    if Path(args.output).is_dir():
        raise InputImageError(f"-o {args.output} is a folder; give a file name (folders of stacks: --batch DIR -o OUTDIR)")
    _check_suffix(args.output, IMAGE_OUTPUTS, "-o")
    _check_suffix(args.save_raw, (".npy",), "--save-raw")
    _check_suffix(args.save_map, (".png", ".tif", ".tiff", ".bmp"), "--save-map")
    _check_suffix(args.save_depth, (".png",), "--save-depth")
    _check_suffix(args.depth_preview, (".png",), "--depth-preview")
    if args.depth_preview and not args.save_depth:
        raise FusionError("--depth-preview goes with --save-depth DEPTH.png")
    if args.save_map and not entry.decision_map:
        raise FusionError(f"--save-map: {args.model} produces no decision map")
    _check_sources(args.images, count_hint=" (or fuse a folder with --batch DIR)",
                   folder_hint=" (fuse folders with --batch)")
    check_outputs({"-o": args.output, "--save-raw": args.save_raw, "--save-map": args.save_map,
                   "--save-depth": args.save_depth, "--depth-preview": args.depth_preview}, args.images)
    _check_weights(args)
    _check_transforms(args)
    if len(args.images) == 2 and args.align == "none" and args.transforms is None:
        # a pair is read (and its sizes checked) before the model loads
        from fusion_tf.core.imageio import check_output_depth, read_images

        sources = read_images(args.images)
        check_output_depth(args.output, args.output_depth or 8 * sources[0].itemsize)
        size = sources[0].shape[:2]
    else:  # stacks (e.g. 65 microscope frames) stream: one frame in memory at a time; registration names files
        from fusion_tf.core.imageio import image_size

        sources, size = args.images, image_size(args.images[0])
    options = _plan_tile(args, options, *size)
    fuser = api.load_fuser(args.model, args.weights, **options)
    t0 = time.perf_counter()
    result = api.fuse(sources, fuser=fuser, progress=None, output_depth=args.output_depth,
                      depth=bool(args.save_depth), **_alignment_options(args))
    seconds = time.perf_counter() - t0
    _write_result(args, result)
    print(f"fused {len(args.images)} images with {args.model} in {seconds:.2f} s → {args.output}")
    note = None if args.quiet else presets.note_for(fuser.weights_source)  # e.g. demonstration weights
    if note:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _plan_tile(args, options: dict, height: int, width: int) -> dict:
    """``options`` with the tile ``--tile`` comes to for height×width images
    (:func:`fusion_tf.memory.planned_options`); its note, if any, on stderr."""
    options, note = memory.planned_options(args.model, height, width, {**options, "tile": args.tile})
    if note and not args.quiet:
        print(f"note: {note}", file=sys.stderr)
    return options


def _largest_first_frame(groups: dict) -> tuple[int, int]:
    """(height, width) of the largest first frame among ``--batch`` groups, from file headers: one
    fuser serves every group, so its tile is planned for the largest.  An unreadable frame is left
    to fail its own group later (a batch never stops on one group's bad input)."""
    from fusion_tf.core.imageio import image_size

    sizes = []
    for frames in groups.values():
        try:
            sizes.append(image_size(frames[0]))
        except InputImageError:
            continue
    return max(sizes, key=lambda hw: hw[0] * hw[1], default=(0, 0))


def _check_sources(paths: list[str], count_hint: str = "", folder_hint: str = "") -> None:
    """At least two source files that exist, checked before anything loads (``fuse``, ``align``)."""
    if len(paths) < 2:
        raise InputImageError(f"need at least 2 images, got {len(paths)}{count_hint}")
    for path in paths:
        if Path(path).is_dir():
            raise InputImageError(f"{path} is a folder, not an image{folder_hint}")
        if not Path(path).is_file():
            raise InputImageError(f"image not found: {path}")


def _check_weights(args) -> None:
    """A missing file or a foreign format fails here, before the network is built."""
    if args.weights is not None:
        from fusion_tf.weights.resolve import resolve

        resolve(args.model, args.weights)


def _check_transforms(args) -> None:
    if args.transforms is not None and not Path(args.transforms).is_file():
        raise FusionError(f"--transforms {args.transforms}: file not found")


def _write_result(args, result) -> None:
    from fusion_tf.core.imageio import read_metadata, write_image, write_npy

    metadata = result.metadata or read_metadata(args.images[0])  # a pair reaches api.fuse as arrays
    write_image(args.output, result.fused, metadata=metadata, depth=args.output_depth)
    if args.save_raw:
        write_npy(args.save_raw, np.asarray(result.raw, np.float32))
    if args.save_map:
        from fusion_tf.core.color import to_uint8

        write_image(args.save_map, to_uint8(np.clip(result.decision_map, 0, 1) * 255.0))
    if args.save_depth:
        from fusion_tf.api import write_depth

        write_depth(result, args.save_depth, preview=args.depth_preview)


def _fuse_batch(args, options: dict) -> int:
    from fusion_tf import api, batch

    if args.images:
        raise FusionError("--batch DIR takes no image arguments (the groups come from DIR)")
    if args.save_raw or args.save_map or args.depth_preview:
        raise FusionError("--save-raw/--save-map/--depth-preview name one file; they do not apply to --batch "
                          "(--save-depth DIR does: one depth map per group)")
    if args.beam_options is not None and args.engine != "beam":
        raise FusionError("--beam-options needs --engine beam")
    suffix = "." + args.format
    batch.check_output_folder(args.batch, args.output)
    if args.save_depth:
        if args.engine == "beam":
            raise FusionError("--save-depth with --engine beam is not available yet; use the local engine")
        batch.check_output_folder(args.batch, args.save_depth)
    groups = batch.batch_groups(args.batch)
    _check_weights(args)
    _check_transforms(args)
    options = _plan_tile(args, options, *_largest_first_frame(groups))
    per_group = {**_alignment_options(args), "output_depth": args.output_depth}
    if args.engine == "beam":
        from fusion_tf import beam

        t0 = time.perf_counter()
        outcomes = beam.fuse_batch(groups, args.output, args.model, args.weights, fuser_options=options,
                                   suffix=suffix, skip_existing=args.skip_existing, beam_options=args.beam_options,
                                   min_batch_size=args.min_batch_size, max_batch_size=args.max_batch_size,
                                   **per_group)
    else:
        fuser = api.load_fuser(args.model, args.weights, **options)
        t0 = time.perf_counter()
        outcomes = batch.fuse_batch(fuser, groups, args.output, suffix=suffix, skip_existing=args.skip_existing,
                                    depth_dir=args.save_depth, **per_group)
    return batch.report(outcomes, args.model, args.output, time.perf_counter() - t0,
                        " on Beam" if args.engine == "beam" else "")


def _cmd_export(args) -> int:
    from fusion_tf import registry
    from fusion_tf.core.imageio import check_outputs

    registry.get(args.model)
    if Path(args.output).exists():
        raise FusionError(f"-o {args.output} exists; choose a new folder (TF Serving layout: <root>/<model>/<version>)")
    check_outputs({"-o": args.output})
    _check_weights(args)

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
    p.add_argument("--restart", action="store_true",
                   help="start over: delete this run folder's checkpoints and log first (without it an existing run "
                        "resumes from its newest intact checkpoint and is never silently restarted from step 0)")
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


def _alignment_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``fuse --align`` and ``align``."""
    p.add_argument("--align-crop", action=argparse.BooleanOptionalAction, default=True,
                   help="crop to the area every registered frame covers (default); --no-align-crop keeps the "
                        "full frame with replicated borders")
    p.add_argument("--align-photometric", action="store_true",
                   help="also match each frame's brightness to the reference (gain and offset)")
    p.add_argument("--transforms", metavar="FILE.json",
                   help="reuse a saved alignment (from 'fusion-tf align') instead of estimating one: same frame "
                        "size and count; the motion and reference come from the file")


def _alignment_options(args) -> dict:
    return {"align": args.align, "align_reference": args.align_reference, "align_crop": args.align_crop,
            "align_photometric": args.align_photometric, "transforms": args.transforms}


def _cmd_align(args) -> int:
    from fusion_tf import api
    from fusion_tf.core.imageio import check_outputs

    _check_sources(args.images)
    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FusionError(f"-o {out}: give a new or empty folder (aligned frames would mix with other files)")
    check_outputs({"--save-transforms": args.save_transforms}, args.images)
    _check_transforms(args)
    t0 = time.perf_counter()
    options = _alignment_options(args)
    written = api.align(args.images, out, motion=options["align"], reference=options["align_reference"],
                        crop=options["align_crop"], photometric=options["align_photometric"],
                        transforms=options["transforms"], save_transforms=args.save_transforms)
    print(f"aligned {len(written)} frames in {time.perf_counter() - t0:.2f} s → {out}/ "
          f"(transforms: {args.save_transforms or out / 'transforms.json'})")
    return 0


def _reference(text: str):
    """``--align-reference``: first, middle or a 1-based frame number (0-based inside the library)."""
    if text in ("first", "middle"):
        return text
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected first, middle or a frame number, got {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"frame numbers start at 1, got {number}")
    return number - 1


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``fusion-tf fuse: error: …``) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def non_negative_number(text: str) -> float:
    """argparse type: a finite number ≥ 0 (rejected while parsing, before anything loads)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, got {text}")
    return value


def tile_size(text: str) -> int | str:
    """argparse type of ``--tile``: ``auto``, ``none`` or a whole number ≥ the smallest tile."""
    from fusion_tf.inference.tiling import MIN_TILE

    try:
        value = memory.parse_tile(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if isinstance(value, int) and value < MIN_TILE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_TILE}, got {value}")
    return value


def whole_number(minimum: int):
    """argparse type: an integer ≥ ``minimum`` (rejected while parsing, before anything loads)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"whole number ≥ {minimum}"
    return parse


GLOBAL_FLAGS = {"--verbose": "show TensorFlow's own log lines", "--debug": "show the traceback of unexpected errors"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; ``command`` (the first word of argv) says which heavy parts to load."""
    parser = OneLineParser(prog="fusion-tf", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fusion_tf {__version__}")
    for flag, text in GLOBAL_FLAGS.items():  # accepted anywhere on the line; main() takes them out first
        parser.add_argument(flag, action="store_true", help=text + " (anywhere on the command line)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list models, parameter counts and weight presets")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("import-weights", help="convert an original's released weights once into a named preset")
    p.add_argument("model", metavar="MODEL", help="the model the weights belong to (mffgan, gacn, mfifgan)")
    p.add_argument("path", metavar="PATH", help="the released file: …/CGAN.model-19 (mffgan), a state dict .npz (gacn, mfifgan)")
    p.add_argument("--name", required=True, help="preset name, e.g. mffgan-original-lytro (see 'fusion-tf models')")
    p.add_argument("--force", action="store_true", help="replace a preset imported before under this name")
    p.set_defaults(func=_cmd_import_weights)

    p = sub.add_parser("fuse", help="fuse two or more images (first = near focus)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model name (see 'fusion-tf models'; default {DEFAULT_MODEL})")
    p.add_argument("--weights", help="a preset name (fusion-tf models) or a path: .weights.h5, run folder, checkpoint, TF1 prefix, PyTorch .npz (default: the model's shipped preset)")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="source images of one size, in order")
    p.add_argument("-o", "--output", required=True,
                   help="fused image (.png, .jpg, .tif, .bmp); with --batch, the output folder")
    p.add_argument("--batch", metavar="DIR",
                   help="fuse every group in DIR (<name>-A/-B…, <name>_1/_2… files, or one sub-folder per stack) "
                        "in one process, into -o FOLDER/<group>.<format>, logged in batch.csv")
    p.add_argument("--skip-existing", action="store_true", help="--batch: keep groups whose output exists (resume)")
    p.add_argument("--format", choices=("png", "jpg", "tif", "bmp"), default="png", help="--batch: output format")
    p.add_argument("--align", choices=("none", "translation", "euclidean", "affine", "homography"), default="none",
                   help="register hand-held frames first (ECC, each frame to its neighbour, composed to the reference) "
                        "and fuse the area every frame covers; default none (benchmark pairs stay untouched)")
    p.add_argument("--align-reference", type=_reference, default="middle", metavar="first|middle|N",
                   help="--align: the frame the others are registered to (N counts from 1; default middle)")
    _alignment_arguments(p)
    p.add_argument("--save-raw", metavar="OUT.npy", help="network's raw float32 output for the (last) pair")
    p.add_argument("--save-map", metavar="MAP.png", help="decision map as an image (decision-map models)")
    p.add_argument("--save-depth", metavar="DEPTH.png",
                   help="depth (index) map: per pixel, the frame the result takes, as a 16-bit PNG "
                        "(frame i of N → round(i·65535/(N−1)); per-model rules: fusion_tf.core.focus); "
                        "with --batch, a folder: one DIR/<group>.png per group")
    p.add_argument("--depth-preview", metavar="PREVIEW.png",
                   help="with --save-depth: the depth map colourised (viridis, 8-bit RGB PNG)")
    p.add_argument("--output-mode", choices=("plain", "faithful"),
                   help="mffgan: plain (default) or faithful (the original's byte-scaling and JPEG round trips)")
    p.add_argument("--multi", choices=("serial", "calibration"), help="gacn: rule for more than 2 images — calibration (the paper's, default) or serial "
                        "(sharper on real hand-held stacks: docs/stacks.md)")
    p.add_argument("--jit", action="store_true", help="XLA-compile inference (pays off for many same-size images)")
    p.add_argument("--tile", type=tile_size, default=memory.DEFAULT_TILE, metavar="N|auto|none",
                   help="fuse in N×N tiles with a halo of the model's receptive field: bounded memory for "
                        "large images, output identical to whole-image fusion up to float rounding.  auto "
                        "(default): whole images unless they would not fit the available memory, then "
                        f"{memory.AUTO_TILE}-pixel tiles (docs/large_images.md); none: always whole")
    p.add_argument("--tile-cache", type=non_negative_number, metavar="GIB",
                   help="gacn with --tile: memory (GiB, default 1) for full-resolution feature maps kept "
                        "between the SE pre-pass and the real pass; larger images are recomputed per tile "
                        "instead (slower, less memory; 0: never cache). docs/large_images.md")
    p.add_argument("--backend", choices=("tf", "onnxruntime"), default="tf",
                   help="inference engine for the network (onnxruntime: tf2onnx conversion, cached)")
    p.add_argument("--engine", choices=("local", "beam"), default="local",
                   help="--batch: local (this process) or beam (Apache Beam RunInference, pip install -e "
                        "'.[beam]'; docs/bulk.md)")
    p.add_argument("--beam-options", metavar='"--runner=… …"',
                   help="--engine beam: Beam pipeline flags, one quoted string (default: the DirectRunner)")
    p.add_argument("--min-batch-size", type=whole_number(1), default=1,
                   help="--engine beam: groups per RunInference call, at least (docs/bulk.md)")
    p.add_argument("--max-batch-size", type=whole_number(1), default=1,
                   help="--engine beam: groups per RunInference call, at most")
    p.add_argument("--output-depth", type=int, choices=(8, 16), metavar="8|16",
                   help="bits per channel of the output (default: the sources'; 16 needs .png or .tif)")
    p.add_argument("--quiet", action="store_true", help="no note about demonstration weights")
    p.set_defaults(func=_cmd_fuse)

    p = sub.add_parser("align", help="register a hand-held stack and write the aligned frames (+ transforms JSON)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="frames of one stack, in order")
    p.add_argument("-o", "--output", required=True, help="new or empty folder for the aligned frames (<stem>.png)")
    p.add_argument("--align", choices=("translation", "euclidean", "affine", "homography"), default="affine",
                   help="motion model (default affine: shift, rotation, scale — focus breathing — and shear)")
    p.add_argument("--align-reference", type=_reference, default="middle", metavar="first|middle|N",
                   help="the frame the others are registered to (N counts from 1; default middle)")
    _alignment_arguments(p)
    p.add_argument("--save-transforms", metavar="FILE.json",
                   help="where to write the transforms (default OUTDIR/transforms.json)")
    p.set_defaults(func=_cmd_align)

    p = sub.add_parser("export", help="write a SavedModel for TF Serving (pre/post-processing in the graph)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--weights", help="a preset name or a weights path, as for fuse (default: the model's shipped preset)")
    p.add_argument("-o", "--output", required=True, help="new folder for the SavedModel, e.g. serving/mffgan/1")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("prepare", help="build a training store for a model")
    _model_subcommands(p, "prepare", load=command == "prepare")
    p = sub.add_parser("train", help="train (or resume) a model on a prepared store")
    _model_subcommands(p, "train", load=command == "train")

    p = sub.add_parser("evaluate", help="compute fusion metrics over a folder of sources")
    if command == "evaluate" or command is None:  # its arguments import the metrics (SciPy): only for evaluate
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
    flags = {f for f in GLOBAL_FLAGS if f in argv}
    argv = [a for a in argv if a not in GLOBAL_FLAGS]
    from fusion_tf import tf_runtime

    # before anything imports TensorFlow; lean: this process never uses Keras's plotting helpers
    tf_runtime.configure(verbose="--verbose" in flags, lean=True)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = build_parser(command).parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed, one line)
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the user's files: permissions, a full disk, a vanished folder
        if "--debug" in flags:
            raise
        print(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line for the user, the traceback for the report
        if "--debug" in flags:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: unexpected {type(exc).__name__}{': ' + first if first else ''} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
