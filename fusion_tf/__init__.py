"""fusion_tf — faithful TF2 / Keras 3 re-creations of four multi-focus image fusion methods.

Importing the package applies the process-wide TensorFlow switches of :mod:`fusion_tf.tf_runtime`
(oneDNN on, TF's C++ start-up log lines silenced) *before* TensorFlow loads; a value the user already
exported wins.
"""

from fusion_tf import tf_runtime as _tf_runtime

_tf_runtime.configure()

__version__ = "0.1.0"

from fusion_tf.errors import FusionError  # noqa: E402  (after the environment switches)

__all__ = ["FusionError", "__version__"]
