"""The measurement slot: a timing never overlaps another process's step on the same device."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

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


def test_slots_belong_to_the_physical_gpu_so_two_gpus_never_wait_for_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two GPUs simulated by their UUIDs: a measurement on one holds no step on the other
    (both processes may call their GPU ``cuda`` under Ray), and holds every step on itself."""
    import threading
    from types import SimpleNamespace

    import torch

    uuids = {"cuda:0": "aaaa-0000", "cuda:1": "bbbb-1111", "cuda": "bbbb-1111"}
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda device: SimpleNamespace(uuid=uuids[device])
    )
    assert DeviceSlots("cuda:0", tmp_path).key == "GPU-aaaa-0000"
    assert DeviceSlots("cuda", tmp_path).key == DeviceSlots("cuda:1", tmp_path).key

    measuring, release = threading.Event(), threading.Event()

    def measure_on_gpu_0() -> None:
        with DeviceSlots("cuda:0", tmp_path).measure():
            measuring.set()
            release.wait(5)

    holder = threading.Thread(target=measure_on_gpu_0)
    holder.start()
    assert measuring.wait(5)
    started = time.monotonic()
    with DeviceSlots("cuda", tmp_path).compute():  # the other GPU: no wait
        other_gpu_s = time.monotonic() - started

    def step_on_gpu_0() -> None:
        with DeviceSlots("cuda:0", tmp_path).compute():
            pass

    same = threading.Thread(target=step_on_gpu_0)
    blocked_started = time.monotonic()
    same.start()
    same.join(0.3)
    assert same.is_alive()  # the same GPU: the step waits for the measurement
    release.set()
    holder.join(5)
    same.join(5)
    assert other_gpu_s < 0.2
    assert time.monotonic() - blocked_started >= 0.3
