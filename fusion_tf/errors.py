"""The one exception type the command line turns into a one-line message and exit code 2.

Library code raises :class:`FusionError` (or a subclass) for anything caused by the user's input —
unreadable files, mismatched sizes, malformed HDF5 stores, checkpoints that do not fit a model — so
the CLI can report it without a traceback.  Programming errors stay ordinary exceptions.
"""


class FusionError(Exception):
    """A problem with the user's input or files, reported as one line (exit code 2)."""


class InputImageError(FusionError):
    """An image is missing, unreadable, or does not fit the other images."""


class StoreError(FusionError):
    """An HDF5 patch store is missing or has the wrong layout."""


class WeightsError(FusionError):
    """A weights file or checkpoint is missing or does not match the model."""


class TrainingDiverged(FusionError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
