"""Per-trial log files: a trial's stdout and stderr (file descriptors 1 and 2) go to its log."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

LOG_NAME = "log.txt"


@contextlib.contextmanager
def trial_log(trial_dir: str) -> Iterator[Path]:
    """Redirect fds 1 and 2 (so C extensions and subprocesses too) to ``trial_dir/log.txt``."""
    path = Path(trial_dir) / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield path
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
