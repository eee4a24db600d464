"""The one exception tree of effsearch.

User-input errors (a bad recipe, bad arguments, a run directory that cannot be resumed) carry
``exit_code = 2``; everything else exits 1. Third-party exceptions are translated where they
enter effsearch (``raise ExecutorError(...) from exc``) so the CLI never shows a traceback for
something the user can fix.
"""

from __future__ import annotations

from dataclasses import dataclass


class EffsearchError(Exception):
    """Base class for all effsearch errors."""

    exit_code = 1


class UserInputError(EffsearchError):
    """Input given by the user is wrong; nothing was run."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe: where (dotted path and YAML line), and what."""

    path: str
    message: str
    line: int | None = None

    def render(self) -> str:
        line = f"line {self.line}" if self.line is not None else ""
        if not self.path:
            return f"{line or 'the file'}: {self.message}"
        return f"{self.path} ({line}): {self.message}" if line else f"{self.path}: {self.message}"


class RecipeError(UserInputError):
    """The recipe file is missing, unparsable, or fails validation."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        count = len(problems)
        head = f"{source} is not a valid recipe ({count} problem{'s' if count != 1 else ''})"
        body = "\n".join(f"  • {p.render()}" for p in self.problems)
        super().__init__(f"{head}\n{body}")


class ArgumentError(UserInputError):
    """A command-line argument is wrong."""


class ResumeError(UserInputError):
    """A run directory cannot be resumed (or reused) with this recipe."""


class StorageError(EffsearchError):
    """The study storage cannot be opened or written."""


class TaskError(EffsearchError):
    """A task could not be built or returned something unusable."""


class ExecutorError(EffsearchError):
    """An executor could not start or run trials."""
