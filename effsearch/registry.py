"""Name registries: ``@register("optimizer", "nsga2")`` instead of if-chains.

This module imports no implementation: :mod:`effsearch.builtins` imports the built-in tasks,
optimizers and executors (running their ``register`` calls); code that looks names up imports
it first.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from effsearch.errors import UserInputError

T = TypeVar("T")

_REGISTRIES: dict[str, dict[str, Any]] = {}


class UnknownName(UserInputError, KeyError):
    """A name no registered object has (an optimizer, executor or task)."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(kind: str, name: str) -> Callable[[T], T]:
    """Register the decorated object as ``name`` among the ``kind`` (optimizer, task, ...)."""

    def decorate(obj: T) -> T:
        table = _REGISTRIES.setdefault(kind, {})
        if name in table:
            raise RuntimeError(f"{kind} {name!r} is registered twice")
        table[name] = obj
        return obj

    return decorate


def names(kind: str) -> list[str]:
    """All registered names of ``kind``, in registration order."""
    return list(_REGISTRIES.get(kind, {}))


def lookup(kind: str, name: str) -> Any:
    """The object registered as ``name``; :class:`UnknownName` with the known names if none."""
    table = _REGISTRIES.get(kind, {})
    if name not in table:
        raise UnknownName(unknown_name_message(kind, name, table))
    return table[name]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` when a close candidate exists, else ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    return f"unknown {kind} {name!r}.{did_you_mean(name, known)} Known: {', '.join(known)}"
