"""Collecting recipe problems, and saying them the same way (where, what holds, what came)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from effsearch.errors import Problem
from effsearch.recipe.yaml_lines import YamlPath, dotted
from effsearch.registry import did_you_mean


class Collector:
    """Every problem found, each with its dotted path and YAML line."""

    def __init__(self, lines: Mapping[YamlPath, int]) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: YamlPath, message: str) -> None:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        self.problems.append(Problem(dotted(path), message, self.lines.get(probe)))


def list_item(kind: Any) -> Any:
    return kind.__args__[0] if getattr(kind, "__origin__", None) is list else None


def validated(value: Any, kind: Any, path: YamlPath, out: Collector) -> Any:
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        for error in exc.errors():
            out.add((*path, *error["loc"]), pydantic_message(error, kind))
        return None


_REQUIRED_HINTS = {
    "name": "add e.g. name: my-search (it names the run folder)",
    "task": "add e.g. task: {builtin: digits-cnn} or task: {entrypoint: 'my_mod:evaluate'}",
    "objectives": "add e.g. objectives: [{metric: accuracy, direction: maximize}]",
    "budget": "add e.g. budget: {trials: 40}",
}


def pydantic_message(error: Mapping[str, Any], kind: Any) -> str:
    kind_of_error = error["type"]
    given = error.get("input")
    if kind_of_error == "extra_forbidden":
        loc = error["loc"]
        model = _model_at(kind, loc[:-1])
        fields = list(model.model_fields) if model else []
        hint = did_you_mean(str(loc[-1]), fields)
        return f"unknown key.{hint} Allowed: {', '.join(fields)}"
    if kind_of_error == "missing":
        return "is required"
    message = str(error["msg"])
    message = re.sub(r"^Input should be", "must be", message)
    message = re.sub(r"^Input should have", "must have", message)
    message = message[0].lower() + message[1:] if message else message
    return f"{message} (got {shown(given)})"


def _model_at(kind: Any, loc: Sequence[Any]) -> type[BaseModel] | None:
    current = kind
    for part in loc:
        if isinstance(part, int):
            args = getattr(current, "__args__", ())
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    args = getattr(current, "__args__", ())
    if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def kind_of(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
