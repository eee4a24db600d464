"""Safe YAML for recipes, with the line of every key (errors name where a problem is)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from effsearch.errors import Problem, RecipeError

MAX_YAML_NODES = 100_000


class RecipeLoader(yaml.SafeLoader):
    """Safe YAML, plus YAML 1.2 floats such as ``1e-4`` (PyYAML reads them as strings)."""


_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)
RecipeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


class RecipeDumper(yaml.SafeDumper):
    """Quotes text that :class:`RecipeLoader` would read as a number (``'1e5'``)."""


RecipeDumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))

YamlPath = tuple[str | int, ...]


def parse_yaml(text: str, source: str) -> tuple[Any, dict[YamlPath, int]]:
    """Parse ``text`` safely; return the document and a map from path to 1-based line."""
    loader = RecipeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            problem = f"{context} (line {context_mark.line + 1}): {problem}"
        raise RecipeError(source, [Problem("", f"is not valid YAML: {problem}", line)]) from None
    finally:
        loader.dispose()
    if node is None:
        raise RecipeError(
            source,
            [
                Problem(
                    "",
                    "the file is empty; a recipe needs at least name, task, objectives "
                    "and budget (start from: effsearch init)",
                )
            ],
        )
    lines: dict[YamlPath, int] = {}
    counter = [0]
    constructor = RecipeLoader("")
    problems: list[Problem] = []

    def build(current: yaml.Node, path: YamlPath) -> Any:
        counter[0] += 1
        if counter[0] > MAX_YAML_NODES:
            raise RecipeError(
                source,
                [
                    Problem(
                        dotted(path),
                        f"has more than {MAX_YAML_NODES} YAML nodes (aliases "
                        "expanded); a recipe is a small file",
                        current.start_mark.line + 1,
                    )
                ],
            )
        lines[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            constructor.flatten_mapping(current)
            result: dict[str, Any] = {}
            for key_node, value_node in current.value:
                key = constructor.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str):
                    problems.append(Problem(dotted(path), f"keys must be text, got {key!r}", line))
                    continue
                if key in result:
                    problems.append(Problem(dotted((*path, key)), "appears twice; keep one", line))
                    continue
                result[key] = build(value_node, (*path, key))
                lines[(*path, key)] = line
            return result
        if isinstance(current, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(current.value)]
        return constructor.construct_object(current, deep=True)

    try:
        document = build(node, ())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RecipeError(
            source,
            [Problem("", f"is not valid YAML: {exc}", mark.line + 1 if mark else None)],
        ) from None
    finally:
        constructor.dispose()
    if problems:
        raise RecipeError(source, problems)
    return document, lines


def dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
