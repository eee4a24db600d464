"""Per-trial log files: a trial's stdout and stderr go to ``trial_dir/log.txt``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

LOG_NAME = "log.txt"


@contextlib.contextmanager
def trial_log(trial_dir: str) -> Iterator[Path]:
    """Send output to the trial's log: file descriptors 1 and 2 (C extensions, subprocesses)
    and ``sys.stdout``/``sys.stderr`` (which need not be fds 1 and 2: notebooks, test runners).
    """
    path = Path(trial_dir) / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = (os.dup(1), os.dup(2))
    log = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield path
        finally:
            # the terminal first: a log that cannot be written (a full disk) must not keep
            # the process's own output captive
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    finally:
        with contextlib.suppress(OSError):  # the log loses its tail; the run's next write says why
            log.close()
