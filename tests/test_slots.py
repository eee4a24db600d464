"""The measurement slot: a timing never overlaps another process's step on the same device."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from effsearch.objectives.slots import DeviceSlots


def _hold_compute(folder: str, seconds: float, started: multiprocessing.synchronize.Event) -> None:
    slots = DeviceSlots("cpu", Path(folder))
    with slots.compute():
        started.set()
        time.sleep(seconds)
        Path(folder, "step_ended").write_text(str(time.monotonic()))


def _try_compute(folder: str) -> None:
    slots = DeviceSlots("cpu", Path(folder))
    with slots.compute():
        Path(folder, "second_step_started").write_text(str(time.monotonic()))


def test_a_measurement_waits_for_a_step_in_progress_elsewhere(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    other = context.Process(target=_hold_compute, args=(str(tmp_path), 0.5, started))
    other.start()
    assert started.wait(30)
    slots = DeviceSlots("cpu", tmp_path)
    with slots.measure():
        entered = time.monotonic()
    other.join(10)
    assert entered >= float((tmp_path / "step_ended").read_text())
    assert slots.waited_s > 0


def test_no_step_starts_while_a_measurement_holds_the_device(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    slots = DeviceSlots("cpu", tmp_path)
    with slots.measure():
        other = context.Process(target=_try_compute, args=(str(tmp_path),))
        other.start()
        time.sleep(0.5)
        assert not (tmp_path / "second_step_started").exists()
        left = time.monotonic()
    other.join(30)
    assert float((tmp_path / "second_step_started").read_text()) >= left


def test_steps_share_the_device(tmp_path: Path) -> None:
    first, second = DeviceSlots("cpu", tmp_path), DeviceSlots("cpu", tmp_path)
    with first.compute(), second.compute():
        pass  # two shared holders at once: no deadlock


def test_a_dead_process_never_leaves_the_device_locked(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    other = context.Process(target=_hold_compute, args=(str(tmp_path), 60, started))
    other.start()
    assert started.wait(30)
    other.kill()
    other.join()
    with DeviceSlots("cpu", tmp_path).measure():
        pass
