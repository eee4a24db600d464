"""The recipe's ``space``: knobs parsed against what the task declares (or free for an
entrypoint), each problem with its path and line."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from effsearch.recipe.problems import Collector, kind_of, shown
from effsearch.recipe.yaml_lines import YamlPath
from effsearch.registry import did_you_mean
from effsearch.spaces.knobs import (
    CategoricalDistribution,
    Condition,
    FloatDistribution,
    IntDistribution,
    Knob,
    KnobDecl,
    SearchSpace,
)
from effsearch.spaces.runtime import incompatibility

_ABSENT = object()


@dataclass
class TaskFacts:
    """What validation knows of the recipe's task: its knob groups (None: an entrypoint's own),
    the metrics it measures on the recipe's device (None: not declared)."""

    builtin: str | None
    families: Mapping[str, tuple[KnobDecl, ...]] | None
    metrics: tuple[str, ...] | None
    #: metrics the task measures on other devices only: name -> those devices
    elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: with ``measure.devices``: a device-dependent metric -> its per-device names
    per_device: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


_SPEC_KEYS = ("float", "int", "choice", "log", "step", "when")


def validate_space(
    space: Mapping[str, Any] | None,
    task: TaskFacts | None,
    device: str,
    out: Collector,
    also_on: tuple[str, ...] = (),
) -> SearchSpace | None:
    """The recipe's knobs as a search space (None after reporting problems); every choice must
    run on ``device`` and on the devices it is also measured on (``also_on``)."""
    if space is None or task is None:
        return None
    knobs: list[Knob] = []
    problems_before = len(out.problems)
    if task.families is None:
        for group, entries in space.items():
            if not _check_group(group, entries, out):
                continue
            for name, spec in entries.items():
                knob = _parse_knob(group, name, spec, None, knobs, out)
                if knob is not None:
                    knobs.append(knob)
    else:
        for group in space:
            if group not in task.families:
                out.add(
                    ("space", group),
                    f"unknown group for task {task.builtin!r}.{did_you_mean(group, task.families)} "
                    f"Groups: {', '.join(task.families)}",
                )
        for group in task.families:
            entries = space.get(group, {})
            if not _check_group(group, entries, out):
                continue
            declared = {d.name: d for d in task.families[group]}
            for name in entries:
                if name not in declared:
                    out.add(
                        ("space", group, name),
                        f"unknown knob.{did_you_mean(name, declared)} Knobs of {group}: "
                        f"{', '.join(declared)} (see: effsearch spaces)",
                    )
            for decl in task.families[group]:
                spec = entries.get(decl.name, decl.default)
                knob = _parse_knob(group, decl.name, spec, decl, knobs, out, task.families[group])
                measured = [d for d in dict.fromkeys(also_on) if d != device]
                if (
                    knob is not None
                    and _runs_on(knob, decl, device, out)
                    and all(_runs_on(knob, decl, d, out, measured_only=True) for d in measured)
                ):
                    knobs.append(knob)
    if task.families is not None and "runtime" in task.families:
        _engines_fit(knobs, out)
    if len(out.problems) > problems_before:
        return None  # knobs are missing; later errors would only echo the ones reported
    if not any(k.searched for k in knobs):
        example = "see: effsearch spaces" if task.families else "e.g. params: {x: {float: [0, 1]}}"
        out.add(("space",), f"searches nothing; give at least one knob a range ({example})")
        return None
    try:
        return SearchSpace(knobs)
    except ValueError as exc:
        out.add(("space",), str(exc))
        return None


def _runs_on(
    knob: Knob, decl: KnobDecl, device: str, out: Collector, measured_only: bool = False
) -> bool:
    """Refuse choices the recipe's device cannot run (before the search, not mid-way)."""
    dist = knob.distribution
    values = dist.choices if isinstance(dist, CategoricalDistribution) else (knob.fixed,)
    wrong = [v for v in values if not decl.runs_on(v, device)]
    if not wrong:
        return True
    where = ", ".join(decl.devices[wrong[0]])
    path: YamlPath = ("space", knob.group, knob.name)
    out.add(
        (*path, "choice") if dist is not None else path,
        f"{wrong[0]!r} runs on {where} only, and this recipe "
        + (
            f"also measures on {device} (measure.devices); remove it or that device"
            if measured_only
            else f"runs on {device} (execution.device); remove it or change the device"
        ),
    )
    return False


def _engines_fit(knobs: Sequence[Knob], out: Collector) -> None:
    """Refuse a runtime engine that can run none of the recipe's quantization schemes and
    pruning methods, or whose libraries are not installed (pairs that cannot run beside ones
    that can are rejected per trial, before training)."""
    by_name = {k.full_name: k for k in knobs}

    def values(name: str, default: str) -> tuple[Any, ...]:
        knob = by_name.get(name)
        if knob is None:
            return (default,)
        dist = knob.distribution
        return tuple(dist.choices) if isinstance(dist, CategoricalDistribution) else (knob.fixed,)

    engines = values("runtime.engine", "eager")
    schemes = values("quantization.scheme", "none")
    methods = values("pruning.method", "none")
    for engine in engines:
        reasons = [incompatibility(str(engine), str(s), str(m)) for s in schemes for m in methods]
        if all(reasons):
            out.add(("space", "runtime", "engine"), f"{reasons[0]}; nothing in this space can run")
            return
    if "onnxruntime" in engines:
        import importlib.util

        missing = [
            p for p in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(p) is None
        ]
        if missing:
            out.add(
                ("space", "runtime", "engine"),
                f"onnxruntime needs {', '.join(missing)}, which this Python does not have; "
                "install them with: pip install 'effsearch[onnx]'",
            )


def _check_group(group: str, entries: Any, out: Collector) -> bool:
    if not isinstance(entries, dict):
        out.add(("space", group), f"must be a mapping of knobs, got {kind_of(entries)}")
        return False
    return True


def _parse_knob(
    group: str,
    name: str,
    spec: Any,
    decl: KnobDecl | None,
    earlier: Sequence[Knob],
    out: Collector,
    siblings: Sequence[KnobDecl] = (),
) -> Knob | None:
    path: YamlPath = ("space", group, name)
    when = _declared_condition(group, decl, siblings) if decl is not None else ()
    if isinstance(spec, list):
        out.add(path, f"a list is not a knob; to search these values write {{choice: {spec}}}")
        return None
    if not isinstance(spec, dict):
        return _fixed_knob(group, name, spec, decl, when, path, out)

    unknown = [k for k in spec if k not in _SPEC_KEYS]
    for key in unknown:
        out.add(
            (*path, key),
            f"unknown key.{did_you_mean(key, _SPEC_KEYS)} A knob is "
            "{float: [low, high]}, {int: [low, high]} or {choice: [a, b]}, "
            "optionally with log, step, when",
        )
    kinds = [k for k in ("float", "int", "choice") if k in spec]
    if len(kinds) != 1:
        if not unknown:
            out.add(
                path,
                "must have exactly one of float, int or choice "
                f"(got {', '.join(kinds) or 'none'}); a bare value fixes the knob",
            )
        return None
    kind = kinds[0]
    if "when" in spec:
        if decl is not None:
            out.add(
                (*path, "when"), f"built-in knobs have fixed conditions ({condition_text(when)})"
            )
        else:
            when = _parse_when(group, spec["when"], earlier, (*path, "when"), out)
    if decl is not None and decl.kind != kind and not (decl.kind == "float" and kind == "int"):
        out.add((*path, kind), f"{group}.{name} is a {decl.kind} knob ({decl.domain_text()})")
        return None
    dist: CategoricalDistribution | FloatDistribution | IntDistribution | None
    if kind == "choice":
        for key in ("log", "step"):
            if key in spec:
                out.add((*path, key), "applies to float and int knobs only")
        dist = _parse_choice(spec["choice"], decl, (*path, "choice"), out)
    else:
        dist = _parse_range(kind, spec, decl, path, out)
    if dist is None:
        return None
    return Knob(group, name, dist, when=when)


def _fixed_knob(
    group: str,
    name: str,
    value: Any,
    decl: KnobDecl | None,
    when: Condition,
    path: YamlPath,
    out: Collector,
) -> Knob | None:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        out.add(path, f"a fixed value must be a number, text or true/false; got {kind_of(value)}")
        return None
    if decl is not None:
        problem = _outside_domain(decl, value)
        if problem:
            out.add(path, problem)
            return None
        if decl.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
    return Knob(group, name, None, fixed=value, when=when)


def _outside_domain(decl: KnobDecl, value: Any) -> str:
    if decl.kind == "choice":
        if not decl.accepts(value):
            options = decl.choices_text()
            hint = did_you_mean(str(value), map(str, decl.choices))
            return f"must be one of {options} (got {shown(value)}).{hint}".rstrip(".")
        return ""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (decl.kind == "int" and not isinstance(value, int)):
        return f"must be {'an integer' if decl.kind == 'int' else 'a number'} (got {shown(value)})"
    assert decl.low is not None and decl.high is not None
    if not decl.low <= value <= decl.high:
        return f"must lie in [{decl.low:g}, {decl.high:g}] (got {value:g})"
    return ""


def _parse_range(
    kind: str, spec: Mapping[str, Any], decl: KnobDecl | None, path: YamlPath, out: Collector
) -> FloatDistribution | IntDistribution | None:
    bounds = spec[kind]
    where = (*path, kind)
    if not isinstance(bounds, list) or len(bounds) != 2:
        out.add(where, f"must be [low, high] (got {shown(bounds)})")
        return None
    low, high = bounds
    want_int = kind == "int"
    for value in (low, high):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (want_int and not isinstance(value, int))
        ):
            out.add(
                where,
                f"low and high must be {'integers' if want_int else 'numbers'} "
                f"(got {shown(bounds)})",
            )
            return None
        if not math.isfinite(value):
            out.add(where, f"low and high must be finite (got {shown(bounds)})")
            return None
    if not low < high:
        out.add(
            where,
            f"low < high must hold, but got [{low:g}, {high:g}]; "
            "to fix a knob, give a bare value instead",
        )
        return None
    log = spec.get("log", False)
    step = spec.get("step")
    ok = True
    if not isinstance(log, bool):
        out.add((*path, "log"), f"must be true or false (got {shown(log)})")
        ok = False
    elif log and low <= 0:
        out.add((*path, "log"), f"a log range needs low > 0 (got low={low:g})")
        ok = False
    if decl is not None:
        assert decl.low is not None and decl.high is not None
        if low < decl.low or high > decl.high:
            out.add(
                where,
                f"{path[1]}.{path[2]} must lie in [{decl.low:g}, {decl.high:g}] "
                f"(got [{low:g}, {high:g}])",
            )
            ok = False
        if log and not decl.log_ok:
            out.add((*path, "log"), "this knob has no log scale")
            ok = False
    if step is not None:
        bad_type = (
            isinstance(step, bool)
            or not isinstance(step, (int, float))
            or (want_int and not isinstance(step, int))
        )
        if bad_type or step <= 0:
            out.add(
                (*path, "step"),
                f"must be a positive {'integer' if want_int else 'number'} (got {shown(step)})",
            )
            ok = False
        elif log:
            out.add((*path, "step"), "cannot be combined with log: true")
            ok = False
    if not ok:
        return None
    if want_int:
        return IntDistribution(int(low), int(high), log=bool(log), step=int(step or 1))
    return FloatDistribution(
        float(low), float(high), log=bool(log), step=float(step) if step is not None else None
    )


def _parse_choice(
    values: Any, decl: KnobDecl | None, path: YamlPath, out: Collector
) -> CategoricalDistribution | None:
    if not isinstance(values, list) or not values:
        out.add(path, f"must be a non-empty list of values (got {shown(values)})")
        return None
    for value in values:
        if value is not None and not isinstance(value, (str, int, float, bool)):
            out.add(
                path, f"choices must be numbers, text, true/false or null; got {kind_of(value)}"
            )
            return None
    for i, value in enumerate(values):
        # Optuna keeps one of two choices that compare equal (1 == 1.0 == true).
        twin = next((v for v in values[:i] if v == value), _ABSENT)
        if twin is not _ABSENT:
            same = f"{twin!r} and {value!r} compare equal" if twin is not value else repr(value)
            out.add(
                path, f"lists a value twice ({same}); choices must differ (got {shown(values)})"
            )
            return None
    if decl is not None:
        wrong = [v for v in values if not decl.accepts(v)]
        if wrong:
            hint = did_you_mean(str(wrong[0]), map(str, decl.choices))
            out.add(
                path,
                f"{shown(wrong[0])} is not a choice of {path[1]}.{path[2]}.{hint} "
                f"Choices: {decl.choices_text()}",
            )
            return None
    return CategoricalDistribution(values)


def _parse_when(
    group: str, when: Any, earlier: Sequence[Knob], path: YamlPath, out: Collector
) -> Condition:
    if not isinstance(when, dict) or not when:
        out.add(
            path,
            "must map a knob declared earlier to its allowed values, e.g. when: {method: [a, b]}",
        )
        return ()
    known = {k.full_name: k for k in earlier}
    result = []
    for ref, allowed in when.items():
        full = ref if "." in ref else f"{group}.{ref}"
        if full not in known:
            out.add(
                (*path, ref), f"names no knob declared before this one.{did_you_mean(full, known)}"
            )
            continue
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        dist = known[full].distribution
        if isinstance(dist, CategoricalDistribution):
            wrong = [v for v in values if v not in dist.choices]
            if wrong:
                out.add(
                    (*path, ref),
                    f"{shown(wrong[0])} is not a choice of {full} "
                    f"(choices: {', '.join(map(str, dist.choices))})",
                )
                continue
        result.append((full, values))
    return tuple(result)


def _declared_condition(group: str, decl: KnobDecl, siblings: Sequence[KnobDecl]) -> Condition:
    """``decl``'s condition, limited to the choices its task offers for the knobs it names."""
    return tuple(
        (f"{group}.{ref}", values) for ref, values in decl.condition_among(siblings).items()
    )


def condition_text(when: Condition) -> str:
    if not when:
        return "always active"
    return "active when " + ", ".join(f"{ref} in {list(v)}" for ref, v in when)
