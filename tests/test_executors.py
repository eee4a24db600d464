"""Executor conformance: the guarantees of effsearch/search/executors/base.py, for every executor.

A new executor adds nothing here: it is picked up from the registry and must pass the same tests.
Local-only tests cover what only a separate process can survive (a killed worker, a timeout).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import toy_tasks

from effsearch import builtins as builtins  # registers the built-in executors
from effsearch.registry import lookup, names
from effsearch.search.executors import Executor, Report, Status, TrialJob, TrialOutcome
from effsearch.tasks.base import MeasureSettings, TaskSpec

TESTS_DIR = str(Path(__file__).resolve().parent)
EXECUTORS = names("executor")
DEADLINE_S = 60.0  # generous: a replaced local worker imports torch again
_numbers = count()


def make_executor(name: str, **options: Any) -> Executor:
    executor: Executor = lookup("executor", name)(**options)
    return executor


def job(
    tmp_path: Path, entrypoint: str = "zdt1", reports_answered: bool = False, **params: Any
) -> TrialJob:
    """A job running ``toy_tasks.<entrypoint>``; each gets a fresh trial number and folder."""
    number = next(_numbers)
    config = {"params": {"x0": 0.25, "x1": 0.5, "x2": 0.0, **params}}
    return TrialJob(
        number=number,
        config=config,
        task=TaskSpec(entrypoint=f"toy_tasks:{entrypoint}", recipe_dir=TESTS_DIR),
        seed=0,
        threads=1,
        measure=MeasureSettings(),
        trial_dir=str(tmp_path / "trials" / str(number)),
        reports_answered=reports_answered,
    )


def run_all(
    executor: Executor, jobs: Sequence[TrialJob], on_report: Any = None
) -> list[TrialOutcome]:
    """Submit ``jobs`` as slots free up and collect every outcome, as the runner does."""
    queue = list(jobs)
    outcomes: list[TrialOutcome] = []
    deadline = time.monotonic() + DEADLINE_S
    answer = on_report if on_report is not None else (lambda report: True)
    while queue or len(outcomes) < len(jobs):
        while queue and executor.free_slots() > 0:
            executor.submit(queue.pop(0))
        outcomes += executor.poll(0.1, answer)
        assert time.monotonic() < deadline, f"{len(jobs) - len(outcomes)} still running"
    return outcomes + executor.poll(0.0, answer)


@contextmanager
def real_stdio() -> Iterator[None]:
    """sys.stdout/stderr on file descriptors 1 and 2, as in a real process (not pytest's)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def run_one(executor: Executor, one: TrialJob) -> TrialOutcome:
    (outcome,) = run_all(executor, [one])
    assert outcome.number == one.number
    return outcome


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[str, Executor]]:
    """One executor per name for the whole module: local workers start once (~3 s each)."""
    started: dict[str, Executor] = {}
    yield started
    for executor in started.values():
        executor.close()


def pool(pools: dict[str, Executor], name: str, request: pytest.FixtureRequest) -> Executor:
    if name not in pools:
        # Ray tests share the session's cluster
        where = {"address": request.getfixturevalue("ray_cluster")} if name == "ray" else {}
        pools[name] = make_executor(name, workers=2, trial_timeout_s=60.0, threads=1, **where)
    return pools[name]


@pytest.fixture(
    params=[pytest.param(n, marks=pytest.mark.ray) if n == "ray" else n for n in EXECUTORS]
)
def executor(request: pytest.FixtureRequest, pools: dict[str, Executor]) -> Executor:
    return pool(pools, request.param, request)


@pytest.fixture
def local(pools: dict[str, Executor], request: pytest.FixtureRequest) -> Executor:
    return pool(pools, "local", request)


# ----------------------------------------------------------------------------- every executor
def test_every_submitted_job_comes_back_exactly_once(executor: Executor, tmp_path: Path) -> None:
    jobs = [job(tmp_path, x0=i / 10) for i in range(5)]

    outcomes = run_all(executor, jobs)

    assert sorted(o.number for o in outcomes) == [j.number for j in jobs]
    assert executor.poll(0.0) == []


def test_reports_reach_the_driver_in_order_and_its_answer_stops_the_trial(
    executor: Executor, tmp_path: Path
) -> None:
    seen: list[tuple[int, float]] = []

    def stop_at_step_2(report: Report) -> bool:
        seen.append((report.number, report.step))
        return report.step < 2

    stopped, finished = job(tmp_path, "reports_progress", True), job(tmp_path, "reports_progress")

    outcomes = {o.number: o for o in run_all(executor, [stopped, finished], stop_at_step_2)}

    assert [step for number, step in seen if number == stopped.number] == [1.0, 2.0]
    assert outcomes[stopped.number].status == Status.STOPPED
    assert outcomes[stopped.number].metrics["f1"] == pytest.approx(
        outcomes[stopped.number].history[-1]["f1"]
    )
    assert [e["step"] for e in outcomes[stopped.number].history] == [1.0, 2.0]
    # a job whose reports nobody answers runs to the end
    assert outcomes[finished.number].status == Status.COMPLETE
    assert all(number != finished.number for number, _ in seen)


def test_a_successful_trial_returns_its_metrics_as_floats(
    executor: Executor, tmp_path: Path
) -> None:
    outcome = run_one(executor, job(tmp_path, x0=0.25, x1=0.5, x2=0.0))

    assert outcome.ok, outcome.reason
    assert outcome.metrics == pytest.approx(toy_tasks.zdt1_values([0.25, 0.5, 0.0]))
    assert all(type(v) is float for v in outcome.metrics.values())
    assert outcome.duration_s >= 0.0


def test_a_raising_trial_fails_with_the_exception_text(executor: Executor, tmp_path: Path) -> None:
    outcome = run_one(executor, job(tmp_path, "raises", x0=0.75))

    assert not outcome.ok
    assert "ValueError: toy failure at x0=0.75" in outcome.reason


@pytest.mark.parametrize(
    ("entrypoint", "expected"),
    [
        ("returns_nan", "metric 'f2' is nan"),
        ("returns_text", "metric 'f2' must be a number"),
        ("returns_list", "must return a dict of metrics"),
    ],
)
def test_an_unusable_result_fails_with_a_reason_naming_it(
    executor: Executor, tmp_path: Path, entrypoint: str, expected: str
) -> None:
    outcome = run_one(executor, job(tmp_path, entrypoint))

    assert not outcome.ok
    assert expected in outcome.reason


def test_a_bool_metric_fails_with_a_reason_naming_it(executor: Executor, tmp_path: Path) -> None:
    outcome = run_one(executor, job(tmp_path, "returns_bool"))

    assert not outcome.ok
    assert "'f2'" in outcome.reason


def test_a_failed_trial_does_not_stop_the_next_one(executor: Executor, tmp_path: Path) -> None:
    jobs = [job(tmp_path, "raises"), job(tmp_path, "returns_nan"), job(tmp_path)]

    outcomes = {o.number: o for o in run_all(executor, jobs)}

    assert [outcomes[j.number].ok for j in jobs] == [False, False, True]


def test_trial_stdout_and_stderr_go_to_its_log(executor: Executor, tmp_path: Path) -> None:
    one = job(tmp_path, "chatty", x0=0.125)

    with real_stdio():
        outcome = run_one(executor, one)

    assert outcome.ok, outcome.reason
    log = (Path(one.trial_dir) / "log.txt").read_text()
    assert "chatty line 0 of trial with x0=0.125" in log
    assert "chatty line 1999 of trial with x0=0.125" in log
    assert "chatty stderr line" in log


def test_the_log_of_a_raising_trial_holds_its_traceback(executor: Executor, tmp_path: Path) -> None:
    one = job(tmp_path, "raises", x0=0.5)

    with real_stdio():
        run_one(executor, one)

    log = (Path(one.trial_dir) / "log.txt").read_text()
    assert "Traceback" in log
    assert "ValueError: toy failure at x0=0.5" in log


def test_inline_trial_output_goes_to_its_log_when_sys_stdout_is_not_fd_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    executor = make_executor("inline", workers=1, trial_timeout_s=60.0, threads=1)
    one = job(tmp_path, "chatty", x0=0.5)

    run_one(executor, one)

    assert "chatty line 0" in (Path(one.trial_dir) / "log.txt").read_text()


def test_reports_through_the_context_come_back_as_history(
    executor: Executor, tmp_path: Path
) -> None:
    one = job(tmp_path, "with_context")

    outcome = run_one(executor, one)

    assert outcome.ok, outcome.reason
    assert outcome.history == [{"step": 1.0, "partial": 0.5}, {"step": 2.0, "partial": 0.25}]
    assert outcome.metrics["trial_number"] == one.number


def test_a_trial_calling_sys_exit_fails_without_stopping_the_driver(
    executor: Executor, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    try:
        outcome = run_one(executor, job(tmp_path, "calls_sys_exit"))
    except SystemExit:
        pytest.fail("SystemExit from the trial escaped the executor")
    assert not outcome.ok
    assert run_one(executor, job(tmp_path)).ok


def test_cancel_all_returns_each_job_in_flight_exactly_once(
    executor: Executor, tmp_path: Path
) -> None:
    one = job(tmp_path, "sleeps", sleep_s=0.3)
    executor.submit(one)

    outcomes = executor.cancel_all("interrupted by test") + executor.poll(0.0)

    assert [o.number for o in outcomes] == [one.number]
    assert outcomes[0].ok or outcomes[0].reason == "interrupted by test"
    assert run_one(executor, job(tmp_path)).ok  # still usable afterwards


# ----------------------------------------------------------------------------- local only
@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("sigkill", "worker process died: killed by SIGKILL"),
        ("exit", "worker process died: exited with code 3"),
    ],
)
def test_a_trial_that_kills_its_worker_fails_and_the_next_job_runs(
    local: Executor, tmp_path: Path, how: str, expected: str
) -> None:
    dying, after = job(tmp_path, "dies", how=how), job(tmp_path)

    outcomes = {o.number: o for o in run_all(local, [dying, after])}

    assert not outcomes[dying.number].ok
    assert expected in outcomes[dying.number].reason
    assert outcomes[after.number].ok, outcomes[after.number].reason
    assert run_one(local, job(tmp_path)).ok


def test_two_workers_run_two_trials_at_once(local: Executor, tmp_path: Path) -> None:
    run_all(local, [job(tmp_path), job(tmp_path)])  # both workers up and warm

    started = time.monotonic()
    outcomes = run_all(local, [job(tmp_path, "sleeps", sleep_s=1.0) for _ in range(2)])
    elapsed = time.monotonic() - started

    assert [o.ok for o in outcomes] == [True, True]
    assert elapsed < 1.8


def test_a_trial_past_the_timeout_is_killed_and_the_pool_keeps_working(tmp_path: Path) -> None:
    executor = make_executor("local", workers=1, trial_timeout_s=1.0, threads=1)
    try:
        assert run_one(executor, job(tmp_path)).ok
        started = time.monotonic()

        outcome = run_one(executor, job(tmp_path, "sleeps", sleep_s=60))

        assert not outcome.ok
        assert "timed out after 1 s (execution.trial_timeout_s)" in outcome.reason
        assert time.monotonic() - started < 10
        assert run_one(executor, job(tmp_path)).ok
    finally:
        executor.close()


def test_worker_start_up_does_not_count_against_the_trial_timeout(tmp_path: Path) -> None:
    executor = make_executor("local", workers=1, trial_timeout_s=1.0, threads=1)
    try:
        outcome = run_one(executor, job(tmp_path, "sleeps", sleep_s=0.1))
    finally:
        executor.close()

    assert outcome.ok, outcome.reason


# ----------------------------------------------------------------------------- ray only
@pytest.fixture
def ray_pool(pools: dict[str, Executor], request: pytest.FixtureRequest) -> Executor:
    return pool(pools, "ray", request)


@pytest.mark.ray
def test_ray_retries_a_trial_whose_worker_died_and_records_it(
    ray_pool: Executor, tmp_path: Path
) -> None:
    outcome = run_one(ray_pool, job(tmp_path, "dies_once"))

    assert outcome.ok, outcome.reason
    assert outcome.notes[0] == "attempt 1 lost: its Ray worker process died; retried"


@pytest.mark.ray
def test_ray_fails_a_trial_that_keeps_killing_its_worker(
    ray_pool: Executor, tmp_path: Path
) -> None:
    from effsearch.search.executors.ray_executor import RETRIES

    dying, after = job(tmp_path, "dies", how="sigkill"), job(tmp_path)
    outcomes = {o.number: o for o in run_all(ray_pool, [dying, after])}

    assert not outcomes[dying.number].ok
    assert outcomes[dying.number].reason == (
        f"its Ray worker process died, {RETRIES + 1} attempts in all"
    )
    assert len(outcomes[dying.number].notes) == RETRIES
    assert outcomes[after.number].ok


@pytest.mark.ray
def test_ray_kills_a_trial_past_its_timeout(
    ray_pool: Executor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from effsearch.search.executors import ray_executor

    monkeypatch.setattr(ray_executor, "START_GRACE_S", 0.0)
    executor = make_executor("ray", workers=1, trial_timeout_s=1.0, threads=1)  # joins Ray

    outcome = run_one(executor, job(tmp_path, "sleeps", sleep_s=30))

    assert not outcome.ok
    assert outcome.reason.startswith("timed out after 1 s")
    assert run_one(ray_pool, job(tmp_path)).ok
