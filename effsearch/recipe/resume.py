"""What may change when a run resumes, and how two normalized recipes differ."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from effsearch.errors import ResumeError

RESUMABLE_FIELDS = ("budget", "execution", "optimizer", "warm_start")
"""Top-level fields that may change when a run is resumed; any other change invalidates trials."""


def fingerprint(data: Mapping[str, Any]) -> str:
    """Hash of everything that decides what a finished trial means (not budget/execution)."""
    kept = {k: v for k, v in data.items() if k not in RESUMABLE_FIELDS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_resumable(frozen: Mapping[str, Any], recipe: Mapping[str, Any]) -> None:
    """Refuse a recipe (normalized data) whose changes would change what finished trials mean."""
    old = {k: v for k, v in frozen.items() if k not in RESUMABLE_FIELDS}
    new = {k: v for k, v in recipe.items() if k not in RESUMABLE_FIELDS}
    changed = differences(old, new)
    if changed:
        raise ResumeError(
            f"the recipe changed since this run started, in: {', '.join(changed)}. Finished "
            f"trials would no longer match it. Only {', '.join(RESUMABLE_FIELDS)} may change on "
            "resume; start a new run with another --run-dir (or name) instead"
        )


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths where two normalized recipes differ."""
    paths: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        where = f"{prefix}.{key}" if prefix else str(key)
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            paths += differences(a, b, where)
        elif a != b:
            paths.append(where)
    return paths
