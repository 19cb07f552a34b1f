"""Error hierarchy. Every error a user can cause is a :class:`GarrisonError` with one clear line.

The CLI turns any ``GarrisonError`` into ``garrison: <message>`` on stderr and exit code 2; nothing
else reaches the user as a traceback unless ``GARRISON_DEBUG`` is set.
"""

from __future__ import annotations


class GarrisonError(Exception):
    """Base of all expected failures. ``str(err)`` is a single line naming the input."""

    exit_code = 2

    def __init__(self, message: str, *, input_name: str | None = None) -> None:
        self.input_name = input_name
        text = f"{input_name}: {message}" if input_name else message
        super().__init__(" ".join(text.split()))

    def diagnostics(self) -> str:
        return str(self)


class InputError(GarrisonError):
    """The input is malformed, truncated, of an unknown format or hostile."""


class UnsafeArchiveError(InputError):
    """An archive tried to escape its root, or expands beyond the configured bound."""


class NotFoundError(GarrisonError):
    """A path, image, blob or DB that should exist does not."""


class RegistryError(GarrisonError):
    """A registry answered with an error, or not at all."""


class DatabaseError(GarrisonError):
    """The vulnerability database is missing, corrupt or of an unknown schema."""


class ConfigError(GarrisonError):
    """A configuration file, flag or environment variable has a bad value."""
