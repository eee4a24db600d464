"""Per-trial resource limits, applied in whichever process runs the trial."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_STATUS = Path("/proc/self/status")


@contextmanager
def memory_cap(extra_mb: int | None) -> Iterator[None]:
    """While inside, this process may map at most ``extra_mb`` MB more address space than it had
    on entry (``RLIMIT_AS``): a runaway trial gets a MemoryError instead of waking the kernel's
    OOM killer, which might take other trials or the driver with it. ``None``: no cap."""
    if not extra_mb:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _mapped_bytes() + extra_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _mapped_bytes() -> int:
    """The process's virtual size now (``VmSize``)."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0
