"""Where a study lives: Optuna's journal file in the run directory, or any Optuna storage URL."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from effsearch.errors import StorageError

JOURNAL_NAME = "study.journal"


def open_storage(url: str | None, run_dir: Path) -> BaseStorage:
    """Open (creating if needed) the storage for a run; StorageError with the cause if not."""
    if url is None:
        path = run_dir / JOURNAL_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"cannot open the study journal {path}: {exc}") from exc
    try:
        return RDBStorage(url)
    except Exception as exc:
        raise StorageError(
            f"cannot open storage {mask_url(url)}: {type(exc).__name__}: {exc}"
        ) from exc


def describe(url: str | None, run_dir: Path) -> str:
    """Where the study is, safe to print (passwords masked)."""
    return str(run_dir / JOURNAL_NAME) if url is None else mask_url(url)


def mask_url(url: str) -> str:
    """``postgresql://user:***@host/db`` for ``postgresql://user:secret@host/db``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def quiet_optuna() -> None:
    """Silence Optuna's per-trial INFO logs and experimental-API warnings (we have a view)."""
    import warnings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
