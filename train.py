#!/usr/bin/env python
"""Train a model: ``python train.py MODEL ...`` is ``fusion-tf train MODEL ...``.

Example (MFF-GAN on a prepared Lytro store)::

    python train.py mffgan --store stores/lytro --run-dir runs/mffgan_lytro
"""

import sys

from fusion_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
