"""Will a whole image fit in memory?  What ``fuse`` does when it would not (``--tile auto``, the default).

Whole-image fusion holds every feature map of the image at once, about 1.7–2.8 GiB per megapixel
(measured below), so a 24 Mpx camera frame needs 40–70 GiB: the process would be killed by the
system, with no message, or drive the machine into swap.  ``auto`` keeps whole-image fusion (the
papers' setting) whenever the measured cost fits the memory this process may use, and otherwise
fuses in tiles of :data:`AUTO_TILE` pixels, which give the same output (docs/large_images.md) in
bounded memory, and says so in one line.  The purely local networks (:data:`EXACT_TILES`) are tiled
whenever an image is larger than a tile: same bytes, and faster.  Nothing here imports TensorFlow:
the plan is made before the model loads.

The memory to plan with: ``$FUSION_TF_MEMORY_GIB`` when set (a user sharing a machine, tests), else
``MemAvailable`` of ``/proc/meminfo`` within the process's cgroup limit (containers); unknown (not
Linux): no plan, whole-image fusion as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fusion_tf.errors import FusionError

GIB = 1 << 30
#: ``--tile`` values besides a whole number: plan from the image size, or always whole-image
TILE_CHOICES = ("auto", "none")
DEFAULT_TILE = "auto"

#: Peak RSS of whole-image ``fuse``, GiB = base + per_mpx × megapixels.  Measured 2026-12-05 with GNU
#: time on fresh CLI processes (AMD EPYC, TF 2.21, oneDNN on).  Colour pairs at 0.75 and 3.0 Mpx
#: (MFIF-GAN: 0.27 and 0.75 Mpx, it takes 40 s a megapixel): MFF-GAN 1.56 / 4.51 GiB, GIPC-GAN
#: 1.87 / 5.76, GACN 2.13 / 6.48, MFIF-GAN 1.46 / 2.81.  Four-frame 1600×1200 stacks (1.92 Mpx),
#: which hold a running result besides the pair's maps: MFF-GAN 3.76, GIPC-GAN 3.78, GACN
#: calibration 3.08 and serial 4.63.  ``per_mpx`` is the largest slope over those runs from the
#: base (the process with TF loaded), so the estimate bounds every measured case.
WHOLE_IMAGE_PEAK_GIB = {
    "mffgan": (0.58, 1.66),
    "gipcgan": (0.58, 1.73),
    "gipcgan-compact": (0.58, 1.73),  # a smaller network: the full model's cost is an upper bound
    "gacn": (0.68, 2.06),
    "mfifgan": (0.69, 2.83),
}
#: Share of the available memory a plan may fill: room for the estimate's error (±5 % at the
#: measured sizes) and for what else the machine does meanwhile.
FILL = 0.8
#: The tile ``auto`` picks: on 1600×1200 stacks GACN ran at 1.10–1.17× its whole-image time with
#: 640 and 1.24× with 512; MFF-GAN at 0.86–0.90× with either (docs/large_images.md).  Peak memory of
#: a 4000×3000 pair at 640: GACN 2.66 GiB, MFF-GAN below 1.6 GiB.
AUTO_TILE = 640
#: Purely local networks: their tiles see every input a whole image would, so ``auto`` tiles any
#: image larger than a tile, memory or not.  Measured 2026-12-05 on 2000×1500 pairs, same process,
#: first call / next calls: MFF-GAN whole 6.6 / 2.3–2.5 s, tiled 2.6 / 2.4–2.5 s; GIPC-GAN whole
#: 9.8 / 6.4 s, tiled 6.5 / 6.3 s; the fused bytes identical (oneDNN).  A first whole-image call
#: pays for gigabytes of fresh pages; tiles reuse a few hundred megabytes.  GACN and MFIF-GAN need an
#: SE pre-pass on tiles (GACN 2000×1500: 7.9 s tiled against 5.7–7.0 s whole), so they tile only
#: for memory.  Not under ``--jit``: XLA would compile once per window shape.
EXACT_TILES = frozenset({"mffgan", "gipcgan", "gipcgan-compact"})


@dataclass(frozen=True)
class TilePlan:
    """``tile``: what the fuser gets (None: whole image); ``note``: one line for the user, or None."""

    tile: int | None
    note: str | None = None


def parse_tile(text: str) -> int | str:
    """``--tile`` value: ``auto``, ``none`` or a whole number (checked against the minimum later)."""
    value = str(text).strip().lower()
    if value in TILE_CHOICES:
        return value
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected a whole number of pixels, 'auto' or 'none', got {text!r}") from None


def available_bytes() -> int | None:
    """Memory this process may still use: ``$FUSION_TF_MEMORY_GIB``, else MemAvailable capped by the
    cgroup limit (v2 or v1); None where neither is known."""
    override = os.environ.get("FUSION_TF_MEMORY_GIB")
    if override:
        try:
            gib = float(override)
        except ValueError:
            gib = float("nan")
        if not 0.0 < gib < float("inf"):
            raise FusionError(f"FUSION_TF_MEMORY_GIB={override}: expected a positive number of GiB")
        return int(gib * GIB)
    found = [v for v in (_meminfo_available(), _cgroup_headroom()) if v is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """limit − usage of the memory cgroup mounted at ``root`` (v2 ``memory.max``/``memory.current``,
    v1 ``memory/memory.limit_in_bytes``/``memory.usage_in_bytes``); None when unlimited or unreadable."""
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = (root / limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "unlimited" as ~2^63
                continue
            return max(0, int(limit) - int((root / usage_file).read_text().strip()))
        except (OSError, ValueError):
            continue
    return None


def whole_image_bytes(model: str, pixels: int) -> int:
    """Estimated peak memory of fusing ``pixels``-pixel images whole with ``model``."""
    base, per_mpx = WHOLE_IMAGE_PEAK_GIB.get(model, max(WHOLE_IMAGE_PEAK_GIB.values(), key=lambda c: c[1]))
    return int((base + per_mpx * pixels / 1e6) * GIB)


def plan_tile(model: str, height: int, width: int, tile: int | str | None = DEFAULT_TILE,
              jit_compile: bool = False) -> TilePlan:
    """The tile to fuse ``height``×``width`` images with: a number as given, ``none``/None whole, and
    ``auto``: :data:`AUTO_TILE` for a model in :data:`EXACT_TILES` (silently: same bytes, less time);
    else whole when :func:`whole_image_bytes` fits :data:`FILL` of :func:`available_bytes`, and
    :data:`AUTO_TILE` with a note saying why when it does not."""
    if tile is None or tile == "none":
        return TilePlan(None)
    if tile != "auto":
        return TilePlan(tile)
    if model in EXACT_TILES and not jit_compile and max(height, width) > AUTO_TILE:
        return TilePlan(AUTO_TILE)
    available = available_bytes()
    need = whole_image_bytes(model, height * width)
    if available is None or need <= FILL * available or max(height, width) <= AUTO_TILE:
        return TilePlan(None)
    return TilePlan(AUTO_TILE, f"{width}×{height} whole would take about {need / GIB:.1f} GiB with {model}, "
                               f"{available / GIB:.1f} GiB is available: fusing in {AUTO_TILE}-pixel tiles, "
                               "same result up to float rounding (--tile N to choose, --tile none: whole)")


def planned_options(model: str, height: int, width: int, options: dict) -> tuple[dict, str | None]:
    """Fuser ``options`` with their ``tile`` (default ``auto``) planned for height×width images by
    :func:`plan_tile`, and the plan's note.  Whole images drop ``tile`` and ``tile_cache``: the one
    place the CLI and :func:`fusion_tf.fuse` turn ``auto`` into what the fuser gets."""
    plan = plan_tile(model, height, width, options.get("tile", DEFAULT_TILE),
                     jit_compile=bool(options.get("jit_compile")))
    rest = {k: v for k, v in options.items() if k not in ("tile", "tile_cache")}
    if plan.tile is None:
        return rest, plan.note
    cache = {"tile_cache": options["tile_cache"]} if options.get("tile_cache") is not None else {}
    return {**rest, "tile": plan.tile, **cache}, plan.note
