"""``tf.data`` input pipelines over the HDF5 patch stores.

One dataset per epoch: the faithful MFF-GAN order is the file order every epoch; the optional
shuffle is seeded with ``seed + epoch`` so a resumed run sees exactly the batches the interrupted run
would have seen (``skip_batches`` drops those already trained on).
"""

from __future__ import annotations

import tensorflow as tf

from fusion_tf.data.patches import PatchStore


def steps_per_epoch(store: PatchStore, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped, as in the original)."""
    return store.count // batch_size


def _normalise(x: tf.Tensor) -> tf.Tensor:
    if x.dtype == tf.uint8:
        return (tf.cast(x, tf.float32) - 127.5) / 127.5
    return tf.cast(x, tf.float32)


def patch_dataset(
    store: PatchStore,
    batch_size: int,
    epoch: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Batches ``{source: float32 (B, P, P, 1) in [−1, 1]}`` for one epoch of ``store``."""
    if store.layout == "original":
        ds = tf.data.Dataset.from_tensor_slices(dict(store.patches))
    else:
        p = store.patch
        images = {k: tf.constant(v) for k, v in store.images.items()}

        def crop(row):
            return {k: tf.slice(img, [row[0], row[1], row[2]], [1, p, p])[0, ..., None] for k, img in images.items()}

        ds = tf.data.Dataset.from_tensor_slices(store.index)
    if shuffle:
        ds = ds.shuffle(store.count, seed=seed + epoch, reshuffle_each_iteration=False)
    if store.layout != "original":
        ds = ds.map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    if skip_batches:
        ds = ds.skip(skip_batches)
    ds = ds.map(lambda b: {k: _normalise(v) for k, v in b.items()}, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
