"""MFF-GAN inference: pairs, serial stacks, grey and colour, faithful or clean output.

Colour follows the original MATLAB wrapper: the network fuses studio-swing luma Y; Cb/Cr are fused
by the saturation-weighted rule; the result goes back through the studio inverse (shared with
GIPC-GAN in :mod:`fusion_tf.inference.luma`).

Output modes (spec ``mff_gan.md`` §8–§9):

``plain`` (default)  ``y·127.5 + 127.5``, rounded once at the end, no JPEG round trips.  The spec
                     recommends it: it is the network's output without the original's save quirks.
``faithful``         reproduces the original pipeline's bytes: MATLAB-rounded studio Y written as JPEG
                     q75 before the network, the output byte-scaled (per-image min–max stretch, +0.5,
                     truncation) and JPEG q75 encoded, and for colour that stretched Y fed to the
                     inverse transform (a second ×1.164 stretch).
"""

from __future__ import annotations

import io

import numpy as np

from fusion_tf.core import color
from fusion_tf.errors import InputImageError
from fusion_tf.inference.luma import LumaFuser

OUTPUT_MODES = ("plain", "faithful")


def jpeg_round_trip(grey: np.ndarray, quality: int = 75) -> np.ndarray:
    """Encode a uint8 grey image as JPEG and decode it again (the original saved intermediates so)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def bytescale(x: np.ndarray) -> np.ndarray:
    """SciPy's old ``imsave`` conversion: stretch min..max to 0..255, add 0.5, truncate."""
    x = np.asarray(x, np.float64)
    lo, hi = x.min(), x.max()
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    return ((x - lo) * scale + 0.5).clip(0, 255).astype(np.uint8)


def build_network(source=None):
    """Registry hook: the unloaded generator (weights come from :mod:`fusion_tf.weights.resolve`)."""
    from fusion_tf.models.mffgan import build_generator  # TF: not needed to run cached ONNX graphs

    return build_generator()


class MFFGANFuser(LumaFuser):
    """Fuses groups of same-size uint8 images (grey or RGB; first = near focus) with one generator.

    The Y-channel machinery is shared with GIPC-GAN (:class:`~fusion_tf.inference.luma.LumaFuser`);
    this class adds the ``faithful`` output mode's JPEG round trips and byte-scaling.
    """

    name = "mffgan"

    def __init__(self, generator, output_mode: str = "plain", jit_compile: bool = False,
                 backend: str | None = None, tile: int | None = None):
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}")
        self.output_mode = output_mode
        super().__init__(generator, jit_compile=jit_compile, backend=backend, tile=tile)

    def _luma_in(self, image: np.ndarray) -> np.ndarray:
        if self.output_mode == "faithful" and image.dtype != np.uint8:
            raise InputImageError("--output-mode faithful reproduces the original's 8-bit pipeline; "
                                  "fuse 16-bit sources in the default plain mode")
        if image.ndim == 3 and self.output_mode == "faithful":
            return jpeg_round_trip(color.rgb_to_y_studio_matlab(image)).astype(np.float32)
        return super()._luma_in(image)

    def _luma_out(self, raw: np.ndarray) -> np.ndarray:
        """Fused luma as 0..255 floats, the way the chosen output mode saves it."""
        if self.output_mode == "faithful":
            return jpeg_round_trip(bytescale(raw * 127.5 + 127.5)).astype(np.float64)
        return super()._luma_out(raw)
