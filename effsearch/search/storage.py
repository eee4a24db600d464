"""Where a study lives: Optuna's journal file in the run directory, or any Optuna storage URL."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from effsearch.errors import StorageError
from effsearch.secrets import MASK, PASSWORD_ENV, mask_text, mask_url, with_password

JOURNAL_NAME = "study.journal"
TAIL_BLOCK = 1 << 16  # bytes read at a time while looking back for the last line end


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
        return RDBStorage(with_password(url))
    except Exception as exc:
        hint = (
            f"; the URL's password is not kept in the run directory: set {PASSWORD_ENV}, or "
            "use PGPASSWORD or ~/.pgpass"
            if MASK in url
            else ""
        )
        raise StorageError(
            f"cannot open storage {mask_url(url)}: {type(exc).__name__}: "
            f"{mask_text(str(exc), url)}{hint}"
        ) from exc


def drop_torn_tail(run_dir: Path) -> int:
    """Cut off a last journal record that a failed write left without its line end (a disk
    that filled up, a kill mid-append); returns the bytes removed. That write raised, so
    nothing it held was ever taken as done; left in place, the next record appended to it would
    make the journal unreadable. Only the driver, holding the run directory, may call this."""
    path = run_dir / JOURNAL_NAME
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as journal:
        size = journal.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - TAIL_BLOCK)
            journal.seek(start)
            block = journal.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        if keep < size:
            journal.truncate(keep)
            journal.flush()
            os.fsync(journal.fileno())
    return size - keep


def describe(url: str | None, run_dir: Path) -> str:
    """Where the study is, safe to print (passwords masked)."""
    return str(run_dir / JOURNAL_NAME) if url is None else mask_url(url)


def quiet_optuna() -> None:
    """Silence Optuna's per-trial INFO logs and experimental-API warnings (we have a view)."""
    import warnings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
