"""End to end: a real ``effsearch run`` driver killed (SIGKILL) or stopped (Ctrl-C), then resumed.

The driver runs as a subprocess in its own session, with two local workers whose trials sleep, so
the test can stop it between trials; the study journal is read from here while it runs. Each
scenario runs once per module; the tests below check what a user relies on after it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from effsearch.search import records
from effsearch.search.storage import JOURNAL_NAME

pytestmark = pytest.mark.slow

BUDGET = 12
STARTUP_S = 90.0  # driver and worker imports on a busy 2-core box


@dataclass
class Scenario:
    run_dir: Path
    stop_code: int  # the stopped driver's exit status
    stop_output: str
    before: list[FrozenTrial]  # the study right after the stop
    resume_code: int
    resume_output: str
    after: list[FrozenTrial]  # the study after resume

    def complete_before(self) -> list[FrozenTrial]:
        return [t for t in self.before if t.state == TrialState.COMPLETE]

    def stopped(self) -> list[FrozenTrial]:
        """Trials cut short with a configuration: left RUNNING (SIGKILL) or failed as
        interrupted (Ctrl-C). A kill between ask and the end of suggest leaves one without
        (or with half of one): not re-run."""
        return [
            t
            for t in self.before
            if (t.state == TrialState.RUNNING or t.user_attrs.get(records.INTERRUPTED))
            and (records.CONFIG in t.user_attrs or t.system_attrs.get("fixed_params"))
        ]


def effsearch_command() -> list[str]:
    script = Path(sys.executable).parent / "effsearch"
    found = str(script) if script.exists() else shutil.which("effsearch")
    assert found, "the effsearch console script is not installed"
    return [found]


def journal_trials(run_dir: Path) -> list[FrozenTrial]:
    """The study's trials as stored (empty while the study does not exist yet)."""
    path = run_dir / JOURNAL_NAME
    if not path.exists():
        return []
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    try:
        return optuna.load_study(study_name="toy", storage=storage).get_trials()
    except KeyError:
        return []


def wait_for_complete(run_dir: Path, driver: subprocess.Popen[bytes], at_least: int) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if sum(t.state == TrialState.COMPLETE for t in journal_trials(run_dir)) >= at_least:
            return
        assert driver.poll() is None, "the driver ended before it could be stopped"
        time.sleep(0.05)
    pytest.fail(f"fewer than {at_least} trials completed in {STARTUP_S} s")


def start(folder: Path, log: str, *args: str | Path) -> subprocess.Popen[bytes]:
    """``effsearch ARGS`` in its own session (its workers share its process group)."""
    with open(folder / log, "wb") as out:
        return subprocess.Popen(
            [*effsearch_command(), *map(str, args)],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(driver: subprocess.Popen[bytes]) -> None:
    if driver.poll() is None:
        driver.kill()
    driver.wait()
    # The workers of a killed driver outlive it briefly, in its process group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(driver.pid, signal.SIGKILL)


@pytest.fixture(scope="module", params=["sigkill", "ctrl-c"])
def scenario(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    toy_recipe_writer: Callable[..., Path],
) -> Iterator[Scenario]:
    """Run a 12-trial search on 2 local workers, stop it mid-way, then resume it."""
    folder = tmp_path_factory.mktemp(request.param)
    recipe = toy_recipe_writer(
        folder,
        entrypoint="sleeps",
        fixed={"sleep_s": 0.4},
        budget={"trials": BUDGET},
        execution={"executor": "local", "workers": 2, "trial_timeout_s": 60},
    )
    run_dir = folder / "run"
    drivers = [start(folder, "run.log", "run", recipe, "--run-dir", run_dir)]
    try:
        if request.param == "sigkill":
            wait_for_complete(run_dir, drivers[0], at_least=5)
            drivers[0].send_signal(signal.SIGKILL)
        else:
            wait_for_complete(run_dir, drivers[0], at_least=3)
            os.killpg(drivers[0].pid, signal.SIGINT)  # a terminal's Ctrl-C: driver and workers
        stop_code = drivers[0].wait(timeout=60)
        before = journal_trials(run_dir)
        drivers.append(start(folder, "resume.log", "resume", run_dir))
        resume_code = drivers[1].wait(timeout=STARTUP_S + 60)
        yield Scenario(
            run_dir=run_dir,
            stop_code=stop_code,
            stop_output=(folder / "run.log").read_text(),
            before=before,
            resume_code=resume_code,
            resume_output=(folder / "resume.log").read_text(),
            after=journal_trials(run_dir),
        )
    finally:
        for driver in drivers:
            stop_group(driver)


def key(trial: FrozenTrial) -> tuple[Any, ...]:
    return tuple(sorted(trial.params.items()))


# ----------------------------------------------------------------------------- both ways to stop
def test_the_run_was_stopped_part_way_and_resume_succeeded(scenario: Scenario) -> None:
    assert 3 <= len(scenario.complete_before()) < BUDGET
    assert scenario.resume_code == 0, scenario.resume_output
    assert "Traceback" not in scenario.resume_output


def test_every_trial_finished_before_the_stop_is_kept_unchanged(scenario: Scenario) -> None:
    after = {t.number: t for t in scenario.after}

    for trial in scenario.complete_before():
        assert after[trial.number].state == TrialState.COMPLETE
        assert after[trial.number].values == trial.values
        assert after[trial.number].params == trial.params
        assert after[trial.number].user_attrs[records.METRICS] == trial.user_attrs[records.METRICS]


def test_every_trial_cut_short_is_failed_as_interrupted_and_rerun_once(
    scenario: Scenario,
) -> None:
    after = {t.number: t for t in scenario.after}

    for trial in scenario.stopped():
        assert after[trial.number].state == TrialState.FAIL
        assert after[trial.number].user_attrs[records.INTERRUPTED] is True
        retries = [t for t in scenario.after if t.user_attrs.get(records.RETRY_OF) == trial.number]
        assert len(retries) == 1, f"trial {trial.number} re-run {len(retries)} times"
        assert retries[0].params == trial.params
        assert retries[0].state == TrialState.COMPLETE
    retried = {
        t.user_attrs[records.RETRY_OF] for t in scenario.after if records.RETRY_OF in t.user_attrs
    }
    assert retried == {t.number for t in scenario.stopped()}


def test_resume_spends_exactly_the_budget(scenario: Scenario) -> None:
    assert records.counted_trials(scenario.after) == BUDGET
    assert sum(t.state == TrialState.COMPLETE for t in scenario.after) == BUDGET
    assert {t.state for t in scenario.after} <= {TrialState.COMPLETE, TrialState.FAIL}


def test_no_configuration_runs_to_completion_twice(scenario: Scenario) -> None:
    complete = Counter(key(t) for t in scenario.after if t.state == TrialState.COMPLETE)

    assert max(complete.values()) == 1


# ----------------------------------------------------------------------------- each way
@pytest.mark.parametrize("scenario", ["sigkill"], indirect=True)
def test_resume_after_sigkill_says_how_many_trials_it_recovered(scenario: Scenario) -> None:
    complete = scenario.complete_before()

    assert scenario.stop_code == -signal.SIGKILL
    # The kill may land between two trials, when none is running, or between ask and the end of
    # suggest, when a RUNNING trial has no configuration yet and is not re-run.
    assert (
        f"resumed 'toy': {len(complete)} complete, {len(scenario.stopped())} interrupted "
        "(re-running)"
        in scenario.resume_output
    )


@pytest.mark.parametrize("scenario", ["ctrl-c"], indirect=True)
def test_ctrl_c_exits_130_and_says_how_to_resume(scenario: Scenario) -> None:
    assert scenario.stop_code == 130, scenario.stop_output
    assert (
        "interrupted; every finished trial is saved. Resume with: "
        f"effsearch resume {scenario.run_dir}"
    ) in scenario.stop_output
    assert "Traceback" not in scenario.stop_output
    assert not [t for t in scenario.before if t.state == TrialState.RUNNING]
