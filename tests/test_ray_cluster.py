"""The session's real two-node Ray cluster (``ray start``: a head and a second node on loopback
with other resources, ray_nodes.py), searches through ``--address``: the second node killed
mid-run (the search finishes on the head; the node is started again afterwards), and the driver
killed with SIGKILL then resumed. No finished trial is lost or run again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import ray_nodes
from optuna.trial import TrialState
from typer.testing import CliRunner

from effsearch.cli import app
from effsearch.search.rundir import RunDir
from effsearch.search.study import load_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def second_node_raylet() -> int:
    """PID of the second node's raylet (the one started with the ``second`` resource)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args[0].endswith(b"raylet/raylet") and any(b"second," in a for a in args):
            return int(proc.name)
    raise AssertionError("no raylet of the second node")


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it: the node is gone, workers and all."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    doomed, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in doomed]
        doomed.update(children)
        frontier += children
    for victim in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def test_a_search_survives_the_death_of_a_worker_node(
    ray_cluster: str, write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(
        entrypoint="sleeps",
        fixed={"sleep_s": 2.0},
        execution={"executor": "ray", "workers": 2, "trial_timeout_s": 120},
        budget={"trials": 8},
    )
    run_dir = tmp_path / "run"
    killed_after: list[int] = []

    def kill_when_both_nodes_are_busy() -> None:
        # two trials done: the next two are running, one on each node (1 CPU each)
        from test_sigkill_resume import journal_trials

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = sum(t.state == TrialState.COMPLETE for t in journal_trials(run_dir))
            if done >= 2:
                time.sleep(0.5)
                kill_tree(second_node_raylet())
                killed_after.append(done)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_both_nodes_are_busy)
    killer.start()
    try:
        result = CliRunner().invoke(
            app, ["run", str(recipe), "--run-dir", str(run_dir), "--address", ray_cluster]
        )
    finally:
        killer.join()
        gone = not _has_second_node()
        if gone:
            ray_nodes.start_second_node()  # the cluster is the whole session's

    assert result.exit_code == 0, result.output
    assert killed_after and killed_after[0] < 8, "the node was killed while the search ran"
    trials = load_study(RunDir(run_dir))[1].trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    retried = [t for t in trials if any("lost:" in n for n in t.user_attrs.get("notes", []))]
    assert retried, "a trial was running on the killed node and ran again on the head"
    assert gone, "the second node was really killed"


def _has_second_node() -> bool:
    try:
        second_node_raylet()
    except AssertionError:
        return False
    return True


def test_a_driver_killed_on_the_cluster_resumes_without_losing_or_rerunning_trials(
    ray_cluster: str, write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    from test_sigkill_resume import journal_trials, start, stop_group, wait_for_complete

    budget = 10
    recipe = write_recipe(
        entrypoint="sleeps",
        fixed={"sleep_s": 1.0},
        execution={"executor": "ray", "workers": 2, "trial_timeout_s": 120},
        budget={"trials": budget},
    )
    run_dir = tmp_path / "run"
    run = ("run", recipe, "--run-dir", run_dir, "--address", ray_cluster)
    drivers = [start(tmp_path, "run.log", *run)]
    try:
        wait_for_complete(run_dir, drivers[0], at_least=3)
        drivers[0].send_signal(signal.SIGKILL)
        drivers[0].wait(timeout=60)
        before = journal_trials(run_dir)
        drivers.append(start(tmp_path, "resume.log", "resume", run_dir, "--address", ray_cluster))
        code = drivers[1].wait(timeout=300)
    finally:
        for driver in drivers:
            stop_group(driver)

    assert code == 0, (tmp_path / "resume.log").read_text()
    after = {t.number: t for t in journal_trials(run_dir)}
    finished_before = [t for t in before if t.state == TrialState.COMPLETE]
    assert 3 <= len(finished_before) < budget
    for trial in finished_before:  # kept as they were, not run again
        assert after[trial.number].state == TrialState.COMPLETE
        assert after[trial.number].datetime_complete == trial.datetime_complete
    complete = [t for t in after.values() if t.state == TrialState.COMPLETE]
    assert len(complete) == budget
    configs = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(configs)) == len(configs), "no configuration completed twice"


def test_early_stopping_on_the_cluster_from_python(
    ray_cluster: str, write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    """The driver answers every report of trials running on both nodes: some stop early,
    recorded as PRUNED with their last metrics, and the budget is spent in full."""
    import effsearch

    recipe = write_recipe(
        entrypoint="reports_progress",
        early_stopping={"min_step": 1, "eta": 2},
        execution={"executor": "ray", "address": ray_cluster, "workers": 3, "trial_timeout_s": 60},
        budget={"trials": 12},
    )
    result = effsearch.run(recipe, run_dir=tmp_path / "run")

    states = [t.state for t in result.trials]
    assert len(states) == 12
    assert "PRUNED" in states and "COMPLETE" in states
    for trial in result.trials:
        if trial.state == "PRUNED":
            assert trial.metrics["f1"] > 0  # its last report
    nodes = {t.user_attrs["measured_on"]["ray_node"] for t in result.study.trials}
    assert len(nodes) == 2  # both nodes ran trials
    loaded = effsearch.load(tmp_path / "run")
    assert [t.number for t in loaded.pareto] == [t.number for t in result.pareto]
    assert loaded.pareto == result.pareto
    assert loaded.hypervolume == result.hypervolume
