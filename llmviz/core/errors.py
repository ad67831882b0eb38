"""Exceptions whose text is shown to the user as-is."""

from __future__ import annotations


class LlmvizError(Exception):
    """An error with a message written for the user (no traceback needed)."""


class ModelLoadError(LlmvizError):
    """A model could not be loaded; the previously loaded model is untouched."""


class BundledDataError(ModelLoadError):
    """A bundled offline model is missing or damaged; the message names the package."""


class InputError(LlmvizError):
    """The text or file given by the user cannot be used."""


class Cancelled(Exception):
    """Raised inside a task when its cancel token is set."""
