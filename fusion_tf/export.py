"""SavedModel export for TF Serving: pre- and post-processing inside the serving graph.

``fusion-tf export --model M [--weights W] -o DIR`` writes a SavedModel whose ``serving_default``
signature takes two uint8 batches ``img_a``, ``img_b`` of shape (N, H, W, C) — any H, W; C = 3 (RGB) or
1 (grey), the same for both — and returns ``fused`` (uint8, same shape and colour mode) and, for
decision-map models, ``dm_initial`` / ``dm_final`` (float32, (N, H, W, 1)).  A client needs nothing
else: colour conversion, normalisation, the guided filter and rounding are all in the graph.

Written with ``keras.export.ExportArchive`` (which tracks exactly the variables the endpoint uses);
a hand-made ``tf.Module`` around a Keras 3 model loads in Python but fails in the TF1 loader that
``saved_model_cli run`` and TF Serving use (tf_stack.md §7).  No XLA in exported functions: shapes
are dynamic.  The directory appears only when complete (written beside it, then renamed).

Supported: ``mffgan``, ``gipcgan``, ``gipcgan-compact`` (luma models; the ``plain`` output mode),
``gacn`` and ``mfifgan`` (``plain`` pixel selection; its small-region removal runs in graph ops,
:mod:`fusion_tf.core.regions_tf`, equal to the SciPy version ``fuse`` uses).  Client documentation:
``docs/serving.md``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from fusion_tf.core import color_tf
from fusion_tf.errors import FusionError

IMAGE_SPEC = tf.TensorSpec((None, None, None, None), tf.uint8)


def _is_rgb(x: tf.Tensor) -> tf.Tensor:
    return tf.equal(tf.shape(x)[-1], 3)


def luma_endpoint(fuser):
    """Y-channel models (MFF-GAN, GIPC-GAN): studio YCbCr in the graph, Cb/Cr rule, inverse."""
    generator = fuser.generator

    def network(ya, yb):
        """float64 luma in, float64 luma out; the network itself runs in float32 like ``fuse``."""
        ya, yb = tf.cast(ya, tf.float32), tf.cast(yb, tf.float32)
        raw = generator([(ya - 127.5) / 127.5, (yb - 127.5) / 127.5], training=False)
        return tf.cast(raw, tf.float64) * 127.5 + 127.5

    def colour(a, b):
        # colour maths in float64, as the NumPy path: float32 would move ~0.1 % of pixels by 2 levels
        y1, cb1, cr1 = color_tf.rgb_to_ycbcr_studio(a)
        y2, cb2, cr2 = color_tf.rgb_to_ycbcr_studio(b)
        rgb = color_tf.ycbcr_studio_to_rgb(network(y1, y2), color_tf.fuse_chroma(cb1, cb2),
                                           color_tf.fuse_chroma(cr1, cr2))
        return color_tf.to_uint8(rgb)

    def serve(img_a, img_b):
        a, b = tf.cast(img_a, tf.float64), tf.cast(img_b, tf.float64)
        fused = tf.cond(_is_rgb(a), lambda: colour(a, b), lambda: color_tf.to_uint8(network(a, b)))
        return {"fused": fused}

    return generator, serve


def gacn_endpoint(fuser):
    """GACN: grey (skimage rule) for the network, the rectified map applied to every channel."""
    model = fuser.model

    def serve(img_a, img_b):
        # grey rule and blending in float64 like the NumPy path: sigmoid(1000·x) turns float32
        # round-off at near-tie pixels into different decisions
        a, b = tf.cast(img_a, tf.float64) / 255.0, tf.cast(img_b, tf.float64) / 255.0
        grey = [tf.cast(tf.cond(_is_rgb(x), lambda x=x: color_tf.rgb_to_grey_skimage(x), lambda x=x: x), tf.float32)
                for x in (a, b)]
        origin, bgf, _ = model((grey[0], grey[1]), training=False)
        d = tf.cast(bgf, tf.float64)
        fused = d * a + (1.0 - d) * b
        # the original's uint8(x·255 + 0.499999999) after clipping the filter's ~1e-6 overshoot
        out = tf.cast(tf.floor(tf.clip_by_value(fused, 0.0, 1.0) * 255.0 + 0.499999999), tf.uint8)
        return {"fused": out, "dm_initial": origin, "dm_final": bgf}

    return model, serve


def _fix_size_tf(focus: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """MFIF-GAN's ``to_same_size`` in graph ops: ×255 truncated to uint8, centre crop with Python's
    half-to-even offsets (``tf.round`` rounds so too), back to [0, 1]; untouched when sizes agree."""

    def crop():
        q = tf.cast(tf.cast(focus * 255.0, tf.uint8), tf.float32) / 255.0
        top = tf.cast(tf.round(tf.cast(tf.shape(focus)[1] - height, tf.float64) / 2.0), tf.int32)
        left = tf.cast(tf.round(tf.cast(tf.shape(focus)[2] - width, tf.float64) / 2.0), tf.int32)
        return q[:, top : top + height, left : left + width]

    same = tf.logical_and(tf.equal(tf.shape(focus)[1], height), tf.equal(tf.shape(focus)[2], width))
    return tf.cond(same, lambda: focus, crop)


def mfifgan_endpoint(fuser):
    """MFIF-GAN: the BN-folded generator ``fuse`` runs, size fix, > 0.5, SRR in graph ops
    (:mod:`fusion_tf.core.regions_tf`, equal to the SciPy version), then pixel selection (``plain``)."""
    from fusion_tf.core.regions_tf import small_region_removal

    folded, fraction = fuser.folded, fuser.srr_fraction

    def network_range(x):
        x = tf.cond(_is_rgb(x), lambda: x, lambda: tf.tile(x, [1, 1, 1, 3]))
        return (tf.cast(x, tf.float32) / 255.0 - 0.5) / 0.5

    def serve(img_a, img_b):
        h, w = tf.shape(img_a)[1], tf.shape(img_a)[2]
        focus = _fix_size_tf(folded(network_range(img_a), network_range(img_b)), h, w)
        final = small_region_removal(focus[..., 0] > 0.5, fraction)[..., None]
        return {"fused": tf.where(final, img_a, img_b), "dm_initial": focus, "dm_final": tf.cast(final, tf.float32)}

    return folded, serve


ENDPOINTS = {"mffgan": luma_endpoint, "gipcgan": luma_endpoint, "gipcgan-compact": luma_endpoint,
             "gacn": gacn_endpoint, "mfifgan": mfifgan_endpoint}


def export_model(name: str, weights: str | None, out_dir: str | Path) -> Path:
    """Export ``name`` with ``weights`` as a SavedModel at ``out_dir`` (must not exist yet)."""
    from fusion_tf import registry

    if name not in ENDPOINTS:
        raise FusionError(f"export supports {', '.join(ENDPOINTS)}; not {name!r}")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FusionError(f"{out_dir} exists; choose a new folder (TF Serving layout: <root>/<model>/<version>)")
    network, serve = ENDPOINTS[name](registry.load_fuser(name, weights))
    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec(IMAGE_SPEC.shape, IMAGE_SPEC.dtype, name="img_a"),
        tf.TensorSpec(IMAGE_SPEC.shape, IMAGE_SPEC.dtype, name="img_b"),
    ])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        archive.write_out(str(tmp / "model"), verbose=False)
        (tmp / "model").rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
