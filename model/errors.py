"""Errors the public API raises for bad input.

Every error names the problem in plain words so that a CLI can print it and an HTTP
front end can return it as a 4xx message.
"""


class FcanetInputError(ValueError):
    """Base class: the caller gave something the model cannot use."""


class ClickError(FcanetInputError):
    """The click sequence is empty, starts with a negative click, or leaves the image."""


class ImageError(FcanetInputError):
    """The image cannot be decoded, is too large, or has an unusable format."""


class CheckpointError(FcanetInputError):
    """A checkpoint file is missing, unsafe, or does not match any known architecture."""


class TrainingStopped(RuntimeError):
    """A stop signal (SIGTERM, Ctrl-C) ended a training job before its last step. Its state is
    saved; the job is not finished, so nothing after training (gating, registering) ran."""
