"""Batch evaluation of fused images with :mod:`fusion_tf.metrics` (``fusion-tf evaluate``).

``command`` holds the CLI contract (``add_arguments``, ``run``, ``default_run``); ``grouping`` pairs
fused files with source groups; ``runner`` runs models and the parallel metric jobs; ``report`` and
``plots`` write the outputs. Nothing here imports TensorFlow unless ``--model`` is used.
"""
