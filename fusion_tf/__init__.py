"""fusion_tf — faithful TF2 / Keras 3 re-creations of four multi-focus image fusion methods.

Importing the package applies the process-wide TensorFlow switches of :mod:`fusion_tf.tf_runtime`
(oneDNN on, TF's C++ start-up log lines silenced) *before* TensorFlow loads; a value the user already
exported wins.
"""

from fusion_tf import tf_runtime as _tf_runtime

_tf_runtime.configure()

__version__ = "0.1.0"

from fusion_tf.errors import FusionError  # noqa: E402  (after the environment switches)


def fuse(images, model: str | None = None, weights=None, **options):
    """Fuse one group of images (paths or uint8 arrays) → ``FusionResult``; see :func:`fusion_tf.api.fuse`."""
    from fusion_tf import api

    return api.fuse(images, model or api.DEFAULT_MODEL, weights, **options)


def load_fuser(model: str | None = None, weights=None, **options):
    """A loaded model for repeated fusing; see :func:`fusion_tf.api.load_fuser`."""
    from fusion_tf import api

    return api.load_fuser(model or api.DEFAULT_MODEL, weights, **options)


__all__ = ["FusionError", "__version__", "fuse", "load_fuser"]
