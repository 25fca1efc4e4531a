"""fusion_tf — faithful TF2 / Keras 3 re-creations of four multi-focus image fusion methods.

Importing the package sets two process-wide TensorFlow switches *before* TensorFlow is loaded,
because TF reads them only once at import time:

* ``TF_ENABLE_ONEDNN_OPTS=1`` — TF 2.21 leaves oneDNN off on AMD CPUs; turning it on makes the
  convolutions of these models 1.5–2× faster on the CI-class CPU (see ``benchmarks/``).  Results stay
  equal within float tolerance (the faithfulness tests run with it on).  Export
  ``TF_ENABLE_ONEDNN_OPTS=0`` before importing to opt out.
* ``TF_CPP_MIN_LOG_LEVEL=2`` — hides TF's C++ start-up banner (warnings and errors still show).

Both use ``setdefault``: a value the user already exported wins.  If TensorFlow was imported before
``fusion_tf``, the oneDNN switch cannot take effect any more; nothing breaks, it is only slower.
"""

import os as _os

_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from fusion_tf.errors import FusionError  # noqa: E402  (after the environment switches)

__all__ = ["FusionError", "__version__"]
