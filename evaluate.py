#!/usr/bin/env python
"""Batch evaluation: ``python evaluate.py ...`` is ``fusion-tf evaluate ...``.

With no arguments it runs the default evaluation: the bundled sample pairs fused by every model with
shipped weights, scored with the full metric suite, report written to ``results/evaluate_default/``.

``python evaluate.py --report`` writes the project's comparison report to ``docs/results/``: the fixed
Lytro test pairs, the grayscale set and GACN's 26 pairs, fused by every shipped checkpoint and the
originals' weights, beside the published results, with acceptance verdicts and figures
(:mod:`fusion_tf.evaluation.comparison`).
"""

import sys

from fusion_tf.cli import main

if __name__ == "__main__":
    if len(sys.argv) == 1:
        from fusion_tf.evaluation.command import default_run

        sys.exit(default_run())
    sys.exit(main(["evaluate", *sys.argv[1:]]))
