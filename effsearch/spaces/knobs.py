"""Knobs: what a technique declares, how a recipe narrows it, and how a trial samples it.

Three layers:
- :class:`KnobDecl` is what a technique module declares for built-in tasks: kind, the domain a
  value must lie in, the default used when the recipe does not mention the knob, and when the
  knob is active (``when={"method": ("magnitude", "channel")}``).
- :class:`Knob` is one knob of a concrete search: the recipe's range (an Optuna distribution) or
  a fixed value, plus its activation condition.
- :class:`SearchSpace` orders the knobs, samples a nested configuration from an Optuna trial
  (inactive knobs are absent), and rebuilds a configuration from stored parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

KnobKind = Literal["float", "int", "choice"]
_NOT_SAMPLED = object()
Condition = tuple[tuple[str, tuple[Any, ...]], ...]
"""``((full knob name, allowed values), ...)``: all must hold for a knob to be active."""


@dataclass(frozen=True)
class KnobDecl:
    """A knob a technique offers built-in tasks.

    ``low``/``high`` bound what a recipe may ask for (float and int knobs); ``choices`` lists
    the values a choice knob accepts. ``when`` names knobs of the same group and the values
    that make this knob active. ``devices`` maps a choice to the device kinds that can run it
    (choices not listed run anywhere).
    """

    name: str
    kind: KnobKind
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    log_ok: bool = True
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    devices: Mapping[Any, tuple[str, ...]] = field(default_factory=dict)
    open_choice: str = ""
    """A pattern (regular expression) of further text values a choice knob accepts, and what
    they mean, after ``|``: ``"modules:.+|modules:NAME,NAME (explicit module names)"``."""

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices, or text the open pattern matches."""
        if value in self.choices:
            return True
        pattern = self.open_choice.split("|", 1)[0]
        return bool(pattern) and isinstance(value, str) and re.fullmatch(pattern, value) is not None

    def choices_text(self) -> str:
        """``a, b, c`` (and what the open pattern accepts, if any)."""
        text = ", ".join(map(str, self.choices))
        return f"{text}, or {self.open_choice.split('|', 1)[-1]}" if self.open_choice else text

    def runs_on(self, value: Any, device: str) -> bool:
        """Whether choice ``value`` can run on ``device`` (``cpu``, ``cuda:1``, ...)."""
        return device.split(":")[0] in self.devices.get(value, (device.split(":")[0],))

    @staticmethod
    def float(name: str, low: float, high: float, default: float, help: str, **kw: Any) -> KnobDecl:
        return KnobDecl(name, "float", default, help, low=low, high=high, **kw)

    @staticmethod
    def int(name: str, low: int, high: int, default: int, help: str, **kw: Any) -> KnobDecl:
        return KnobDecl(name, "int", default, help, low=low, high=high, **kw)

    @staticmethod
    def choice(name: str, choices: Sequence[Any], default: Any, help: str, **kw: Any) -> KnobDecl:
        return KnobDecl(name, "choice", default, help, choices=tuple(choices), **kw)

    def restrict(self, *choices: Any) -> KnobDecl:
        """This choice knob offering only ``choices`` (a task that supports fewer methods)."""
        unknown = [c for c in choices if c not in self.choices]
        if self.kind != "choice" or unknown:
            raise ValueError(f"knob {self.name!r}: cannot restrict to {unknown or choices}")
        default = self.default if self.default in choices else choices[0]
        return replace(self, choices=tuple(choices), default=default)

    def condition_among(self, siblings: Sequence[KnobDecl]) -> dict[str, tuple[Any, ...]]:
        """``when``, limited to the choices ``siblings`` (a task's knobs of this group) offer."""
        offered = {d.name: d.choices for d in siblings if d.kind == "choice"}
        return {
            ref: tuple(v for v in values if ref not in offered or v in offered[ref])
            for ref, values in self.when.items()
        }

    def domain_text(self) -> str:
        if self.kind == "choice":
            text = "one of " + ", ".join(
                f"{c} [{'/'.join(self.devices[c])} only]"
                if c in self.devices and len(self.devices[c]) == 1
                else str(c)
                for c in self.choices
            )
            if self.open_choice:
                text += f", or {self.open_choice.split('|', 1)[-1]}"
            return text
        return f"{self.kind} in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Knob:
    """One knob of a concrete search: sampled from ``distribution``, or ``fixed``."""

    group: str
    name: str
    distribution: BaseDistribution | None
    fixed: Any = None
    when: Condition = ()

    @property
    def full_name(self) -> str:
        """The Optuna parameter name, ``group.knob``."""
        return f"{self.group}.{self.name}"

    @property
    def searched(self) -> bool:
        return self.distribution is not None

    def is_active(self, values: Mapping[str, Any]) -> bool:
        """Whether the condition holds for ``values`` (full knob name -> value so far)."""
        return all(ref in values and values[ref] in allowed for ref, allowed in self.when)

    def describe(self) -> str:
        dist = self.distribution
        if dist is None:
            text = f"= {self.fixed!r}"
        elif isinstance(dist, CategoricalDistribution):
            text = "choice " + ", ".join(map(str, dist.choices))
        elif isinstance(dist, (FloatDistribution, IntDistribution)):
            kind = "float" if isinstance(dist, FloatDistribution) else "int"
            text = f"{kind} [{dist.low}, {dist.high}]" + (" log" if dist.log else "")
            if dist.step is not None and not (kind == "int" and dist.step == 1):
                text += f" step {dist.step}"
        else:  # pragma: no cover - we only build the three kinds above
            text = repr(dist)
        if self.when:
            text += "  when " + ", ".join(
                f"{ref} in ({', '.join(map(str, allowed))})" for ref, allowed in self.when
            )
        return text


class SearchSpace:
    """The ordered knobs of a search. A knob's condition may only name knobs before it."""

    def __init__(self, knobs: Sequence[Knob]) -> None:
        seen: set[str] = set()
        for knob in knobs:
            for ref, _ in knob.when:
                if ref not in seen:
                    raise ValueError(
                        f"knob {knob.full_name!r}: its condition names {ref!r}, which must be "
                        "declared before it"
                    )
            seen.add(knob.full_name)
        self.knobs: tuple[Knob, ...] = tuple(knobs)

    @property
    def searched(self) -> tuple[Knob, ...]:
        return tuple(k for k in self.knobs if k.searched)

    def groups(self) -> list[str]:
        return list(dict.fromkeys(k.group for k in self.knobs))

    def suggest(self, trial: optuna.Trial) -> dict[str, dict[str, Any]]:
        """Sample a nested configuration through ``trial``; inactive knobs are absent."""
        return self._resolve(lambda knob: _suggest(trial, knob.full_name, knob.distribution))

    def config_from_params(self, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Rebuild the nested configuration of a trial from its stored Optuna parameters."""
        return self._resolve(lambda knob: params.get(knob.full_name, _NOT_SAMPLED))

    def flat_params(self, config: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """The Optuna parameters (searched knobs only) of a nested configuration."""
        return {
            k.full_name: config[k.group][k.name]
            for k in self.searched
            if k.name in config.get(k.group, {})
        }

    def _resolve(self, sample: Any) -> dict[str, dict[str, Any]]:
        values: dict[str, Any] = {}
        config: dict[str, dict[str, Any]] = {group: {} for group in self.groups()}
        for knob in self.knobs:
            if not knob.is_active(values):
                continue
            value = sample(knob) if knob.searched else knob.fixed
            if value is _NOT_SAMPLED:
                continue
            values[knob.full_name] = value
            config[knob.group][knob.name] = value
        return config


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution | None) -> Any:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    assert isinstance(dist, CategoricalDistribution)
    return trial.suggest_categorical(name, dist.choices)
