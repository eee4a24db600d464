"""One driver per study, also across machines: a lease stored on the study itself.

The run directory's file lock keeps two drivers off one run directory; a study in shared
storage (PostgreSQL) can be reached from several run directories on several machines, so the
driver also holds a lease on the study: who holds it (host, pid) and until when. A background
thread renews it every ``ttl_s / 3``; it ends when the driver releases it or stops renewing it.

Taking the study over is allowed when the lease is released, expired, or held by a process on
this host that no longer exists (a killed driver here can be resumed at once). A lease from
another host that has not expired is refused with who holds it and until when.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import optuna

from effsearch.errors import ResumeError

LEASE_ATTR = "effsearch_driver_lease"
DEFAULT_TTL_S = 60.0


class DriverLease:
    """The lease of one driver on ``study`` (see the module docstring)."""

    def __init__(self, study: optuna.Study, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.study = study
        self.ttl_s = ttl_s
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, or raise :class:`ResumeError` naming the driver that holds it."""
        current = self.study.user_attrs.get(LEASE_ATTR)
        if current is not None and _live(current) and current.get("token") != self.token:
            until = datetime.fromtimestamp(float(current["expires"]), UTC).isoformat(
                timespec="seconds"
            )
            raise ResumeError(
                f"study {self.study.study_name!r} is being driven by another effsearch driver "
                f"(host {current['host']}, pid {current['pid']}); its lease runs until {until} "
                f"UTC and is renewed while it runs. Stop that driver, or if it died, try again "
                f"after that time ({self.ttl_s:g} s after its last renewal)"
            )
        self._write()
        self._thread = threading.Thread(target=self._renew, name="effsearch-lease", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lease for the duration of the ``with`` block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def release(self) -> None:
        """Stop renewing and mark the lease free."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):  # a storage that is gone cannot be told
            self.study.set_user_attr(LEASE_ATTR, {**self._record(), "expires": 0.0})

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            with contextlib.suppress(Exception):  # a storage hiccup: try again next time
                self._write()

    def _write(self) -> None:
        self.study.set_user_attr(LEASE_ATTR, self._record())

    def _record(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": self.token,
            "expires": time.time() + self.ttl_s,
        }


def _live(lease: dict[str, Any]) -> bool:
    """Whether ``lease`` still binds: not expired, and not from a dead process on this host."""
    if float(lease.get("expires", 0.0)) <= time.time():
        return False
    if lease.get("host") == socket.gethostname():
        return _process_exists(int(lease.get("pid", 0)))
    return True


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
