"""Trials on a host with several GPUs, scheduled by Ray: one trial per GPU at a time, each on
its own. Ray is told the GPUs exist (``num_gpus``), so this runs on any machine; the run on
real GPUs is ``benchmarks/multi_gpu.py``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_executors import job, make_executor, run_all

from effsearch.errors import ExecutorError, TaskError
from effsearch.objectives import meters

GPUS = 3


def start_ray(gpus: int) -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        address="local",
        num_cpus=2 * GPUS,
        num_gpus=gpus,
        include_dashboard=False,
        log_to_driver=False,
    )


@pytest.fixture
def ray_with_gpus() -> Iterator[None]:
    import ray

    start_ray(GPUS)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.ray
def test_each_gpu_runs_one_trial_at_a_time_and_every_gpu_is_used(
    ray_with_gpus: None, tmp_path: Path
) -> None:
    executor = make_executor("ray", workers=8, trial_timeout_s=60, threads=1, gpus_per_trial=1.0)
    # workers asks for 8 in flight; the cluster's GPUs hold 3: the rest wait in the driver
    assert executor.free_slots() == GPUS

    outcomes = run_all(executor, [job(tmp_path, "holds_a_gpu", sleep_s=1.5) for _ in range(6)])
    executor.close()

    assert all(o.ok for o in outcomes), [o.reason for o in outcomes]
    runs = []
    for outcome in outcomes:
        ray_ids = outcome.measured_on["ray_gpu_ids"].split(",")
        assert len(ray_ids) == 1  # one whole GPU
        assert float(ray_ids[0]) == outcome.metrics["visible_gpu"]  # and CUDA sees only it
        runs.append((outcome.metrics["started_s"], outcome.metrics["ended_s"], ray_ids[0]))
    assert {gpu for _, _, gpu in runs} == {str(i) for i in range(GPUS)}
    for (start_a, end_a, gpu_a), (start_b, end_b, gpu_b) in itertools.combinations(runs, 2):
        if start_a < end_b and start_b < end_a:
            assert gpu_a != gpu_b, "two trials overlapped on one GPU"
    busiest = max(sum(s <= start < e for s, e, _ in runs) for start, _, _ in runs)
    assert busiest == GPUS  # every GPU busy at once: the trials did run side by side


@pytest.mark.ray
def test_trials_that_ask_for_more_gpus_than_the_cluster_has_are_refused(
    tmp_path: Path,
) -> None:
    import ray

    start_ray(0)
    try:
        with pytest.raises(ExecutorError, match="has 0 GPUs"):
            make_executor("ray", workers=2, trial_timeout_s=60, threads=1, gpus_per_trial=1.0)
    finally:
        ray.shutdown()


def test_a_cuda_trial_where_no_gpu_is_visible_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meters.torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")

    with pytest.raises(TaskError, match="sees no CUDA device"):
        meters.provenance("cuda")
