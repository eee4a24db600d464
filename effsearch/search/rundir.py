"""The run directory: frozen recipe, run metadata, per-trial folders, and the driver lock."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from effsearch.errors import ArgumentError, ResumeError
from effsearch.recipe.schema import Recipe
from effsearch.recipe.validate import validate
from effsearch.recipe.yaml_lines import parse_yaml
from effsearch.version import __version__

RECIPE_NAME = "recipe.yaml"
PROBE_NAME = ".effsearch-write-probe"
PROBE_BYTES = 1 << 20  # 1 MiB: the journal, logs and frozen recipe of a start need less
META_NAME = "run.json"
LOCK_NAME = ".driver.lock"
PARETO_NAME = "pareto.json"


class RunDir:
    """One run's folder. Everything a report needs is in it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def recipe_path(self) -> Path:
        return self.path / RECIPE_NAME

    @property
    def pareto_path(self) -> Path:
        return self.path / PARETO_NAME

    def trial_dir(self, number: int) -> Path:
        return self.path / "trials" / str(number)

    def exists(self) -> bool:
        return self.recipe_path.is_file()

    def freeze(self, recipe: Recipe) -> None:
        """Write the normalized recipe and where it came from (for resume and reports)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.recipe_path.write_text(recipe.dump(), encoding="utf-8")
        meta = {
            "recipe_source": str(Path(recipe.source).resolve()),
            "recipe_dir": recipe.recipe_dir,
            "fingerprint": recipe.fingerprint(),
            "effsearch_version": __version__,
            "created": self.meta().get("created", datetime.now(UTC).isoformat(timespec="seconds")),
        }
        (self.path / META_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    def meta(self) -> dict[str, str]:
        path = self.path / META_NAME
        if not path.is_file():
            return {}
        data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def frozen_recipe(self, import_entrypoint: bool = True) -> Recipe:
        """The recipe the run was started with (entrypoints resolve from its original folder).

        Reading results passes ``import_entrypoint=False``: it needs only the run directory.
        """
        if not self.exists():
            raise ResumeError(
                f"{self.path} is not an effsearch run directory (no {RECIPE_NAME}); "
                "start a run with: effsearch run RECIPE"
            )
        text = self.recipe_path.read_text(encoding="utf-8")
        source = str(self.recipe_path)
        document, lines = parse_yaml(text, source)
        recipe_dir = self.meta().get("recipe_dir", str(self.path))
        return validate(document, lines, source, recipe_dir, import_entrypoint=import_entrypoint)

    def check_writable(self) -> None:
        """Create the folder and write ``PROBE_BYTES`` into it (synced), so a read-only folder or
        a full disk is a clear error before any trial starts, not a crash mid-run."""
        probe = self.path / PROBE_NAME
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as handle:
                handle.write(b"\0" * PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
            probe.unlink()
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise ArgumentError(
                f"cannot write to the run directory {self.path} ({why}); nothing was run. "
                "Free some space there, or give a writable folder with --run-dir"
            ) from None

    @contextmanager
    def driver_lock(self) -> Iterator[None]:
        """Hold the run exclusively; a second driver is refused (the OS frees it on death)."""
        self.check_writable()
        path = self.path / LOCK_NAME
        handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ResumeError(
                f"{self.path} is being run by {holder}; wait for it or stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
