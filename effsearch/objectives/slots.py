"""A quiet room for measurements: trials on one device never time each other's noise.

Every trial process on a device does its heavy work (training steps, evaluation batches) in
*shared* slots and its timing in an *exclusive* slot. A measurement waits until no other trial
is inside a step, and blocks new steps until it is done; training resumes right after. Two
``flock`` files per device implement a writer-preferring readers-writer lock, so a measurement
is not starved by back-to-back steps:

    step:    lock gate EX -> lock room SH -> unlock gate -> work -> unlock room
    measure: lock gate EX -> lock room EX -> time it -> unlock room -> unlock gate

Slots belong to the physical device (:func:`device_key`): a GPU is known by its UUID, so two
trials whose processes both call their GPU ``cuda`` (Ray renumbers ``CUDA_VISIBLE_DEVICES``)
never wait for each other unless they share the GPU. The files live in one folder per machine
(``EFFSEARCH_SLOT_DIR``, default ``$TMPDIR/effsearch-slots``), so concurrent *runs* on the same
device respect each other too.
The OS drops a dead process's locks, so a killed trial never leaves the room locked.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def device_key(device: str) -> str:
    """The physical device behind ``device``: ``cpu``, or a GPU's UUID (``GPU-...``), the same
    in every process whatever ``CUDA_VISIBLE_DEVICES`` renumbered."""
    if not device.startswith("cuda"):
        return device.split(":")[0]
    import torch

    return f"GPU-{torch.cuda.get_device_properties(device).uuid}"


def slot_dir() -> Path:
    return Path(
        os.environ.get("EFFSEARCH_SLOT_DIR", Path(tempfile.gettempdir()) / "effsearch-slots")
    )


class DeviceSlots:
    """Shared (compute) and exclusive (measure) slots on one device, across processes."""

    def __init__(self, device: str, folder: Path | None = None) -> None:
        folder = folder or slot_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.key = device_key(device)
        safe = self.key.replace(":", "_").replace("/", "_")
        self._gate: IO[bytes] = open(folder / f"{safe}.gate", "a+b")  # noqa: SIM115 - per process
        self._room: IO[bytes] = open(folder / f"{safe}.room", "a+b")  # noqa: SIM115
        self.waited_s = 0.0  # how long measurements here waited for the room

    @contextmanager
    def compute(self) -> Iterator[None]:
        """Hold a shared slot for one unit of work (a training step, an eval batch)."""
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._room, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._room, fcntl.LOCK_UN)

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Hold the device alone (no trial on it inside a step) while timing."""
        started = time.perf_counter()
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._room, fcntl.LOCK_EX)
            self.waited_s += time.perf_counter() - started
            try:
                yield
            finally:
                fcntl.flock(self._room, fcntl.LOCK_UN)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def close(self) -> None:
        self._gate.close()
        self._room.close()


_SLOTS: dict[str, DeviceSlots] = {}


def device_slots(device: str) -> DeviceSlots:
    """This process's handle on the device's measurement slots (one per device)."""
    if device not in _SLOTS:
        _SLOTS[device] = DeviceSlots(device)
    return _SLOTS[device]
