"""Exceptions raised by speechface.

Every error the library raises on purpose derives from :class:`SpeechfaceError`, so callers
(and the CLI) can catch one type. Messages name the file or object and the problem.
"""

from __future__ import annotations

__all__ = [
    "SpeechfaceError",
    "AudioError",
    "ImageError",
    "ModelError",
    "DataError",
    "UnknownNameError",
    "NoFaceError",
    "OutputError",
]


class SpeechfaceError(Exception):
    """Base class of every error speechface raises on purpose."""


class AudioError(SpeechfaceError, ValueError):
    """Audio that cannot be read or used (missing, empty, corrupt, NaN, too short ...)."""


class ImageError(SpeechfaceError, ValueError):
    """An image that cannot be read or used."""


class NoFaceError(ImageError):
    """No face (or not the requested face) was found in an image."""


class ModelError(SpeechfaceError):
    """A model that cannot be built, saved or loaded (missing file, bad config, wrong space ...)."""


class DataError(SpeechfaceError, ValueError):
    """A dataset, CSV or shard that cannot be read or used."""


class OutputError(SpeechfaceError, ValueError):
    """An output path that cannot or must not be written (an input of the same command, a
    directory, FIFO or device node, a missing or read-only folder, an unsupported extension)."""


class UnknownNameError(SpeechfaceError, KeyError):
    """A name that is not in a registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
