"""One driver per study: the lease on the study, also for studies in shared storage."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from test_pareto import Quiet
from typer.testing import CliRunner

from effsearch.cli import app
from effsearch.errors import ResumeError
from effsearch.recipe import load_recipe
from effsearch.search.lease import LEASE_ATTR, DriverLease
from effsearch.search.rundir import RunDir
from effsearch.search.runner import Runner


def study_with(lease: dict | None) -> optuna.Study:
    study = optuna.create_study(study_name="s")
    if lease is not None:
        study.set_user_attr(LEASE_ATTR, lease)
    return study


def another_hosts_lease(expires_in_s: float) -> dict:
    return {"host": "gpu-box-7", "pid": 4242, "token": "x", "expires": time.time() + expires_in_s}


def test_a_live_lease_of_another_driver_is_refused_with_who_holds_it():
    study = study_with(another_hosts_lease(60))

    with pytest.raises(ResumeError) as info:
        DriverLease(study).acquire()

    message = str(info.value)
    assert "being driven by another effsearch driver (host gpu-box-7, pid 4242)" in message
    assert "lease runs until" in message


def test_an_expired_lease_is_taken_over():
    study = study_with(another_hosts_lease(-1))
    lease = DriverLease(study)

    lease.acquire()
    lease.release()

    assert study.user_attrs[LEASE_ATTR]["token"] == lease.token


def test_the_lease_of_a_dead_driver_on_this_host_is_taken_over_at_once():
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer exists, as a SIGKILLed driver leaves
    study = study_with(
        {"host": socket.gethostname(), "pid": gone.pid, "token": "x", "expires": time.time() + 60}
    )

    with DriverLease(study).held():
        assert study.user_attrs[LEASE_ATTR]["pid"] != gone.pid


def test_the_lease_is_renewed_while_held_and_freed_after():
    study = study_with(None)
    lease = DriverLease(study, ttl_s=0.3)

    with lease.held():
        first = study.user_attrs[LEASE_ATTR]["expires"]
        time.sleep(0.5)
        assert study.user_attrs[LEASE_ATTR]["expires"] > first

    assert study.user_attrs[LEASE_ATTR]["expires"] == 0.0


def test_a_second_run_directory_on_a_shared_study_is_refused(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    recipe = load_recipe(write_recipe(storage=url, budget={"trials": 2}))
    Runner(recipe, RunDir(tmp_path / "one"), Quiet()).run(resume=False)
    study = optuna.load_study(study_name="toy", storage=url)
    study.set_user_attr(LEASE_ATTR, another_hosts_lease(60))  # a driver elsewhere holds it

    second = write_recipe(storage=url, budget={"trials": 4})
    result = CliRunner().invoke(app, ["run", str(second), "--run-dir", str(tmp_path / "two")])

    assert result.exit_code == 2
    assert "being driven by another effsearch driver" in result.output
    assert len(optuna.load_study(study_name="toy", storage=url).trials) == 2
