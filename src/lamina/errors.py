"""Error types that the CLI turns into one readable line and an exit code.

Users of a build tool should never see a Python traceback for something they can fix, so every
anticipated failure is raised as a :class:`LaminaError` subclass carrying its own exit code and a
location (file, line, key) when one is known. Anything else reaching the CLI is a bug in lamina.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where in the user's files an error was found."""

    file: Path | str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        text = str(self.file)
        if self.line is not None:
            text += f":{self.line}"
        if self.key:
            text += f": {self.key}"
        return text


class LaminaError(Exception):
    """A failure the user can act on; rendered as one line, exit code :attr:`exit_code`."""

    exit_code = 1

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class RecipeError(LaminaError):
    """The recipe tree is malformed: bad YAML, wrong types, unknown references, cycles."""

    exit_code = 2


class UsageError(LaminaError):
    """The command line asks for something that does not exist or cannot be combined."""

    exit_code = 2


class ToolError(LaminaError):
    """An external tool (buildah, skopeo, umoci, bwrap) is missing or failed."""

    exit_code = 1


class RegistryError(LaminaError):
    """A registry answered with an error, or could not be reached."""

    exit_code = 1
