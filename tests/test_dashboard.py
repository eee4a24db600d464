"""A run's storage opens in optuna-dashboard, as the README says (the real server, over HTTP)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from effsearch.cli import app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str, deadline_s: float = 60.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_optuna_dashboard_reads_a_runs_journal(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(budget={"trials": 4})
    ran = CliRunner().invoke(app, ["run", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert ran.exit_code == 0, ran.output
    port = free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    server = subprocess.Popen(
        [str(dashboard), str(tmp_path / "run" / "study.journal"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/0?after=0")
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert [s["study_name"] for s in studies] == ["toy"]
    assert len(detail["trials"]) == 4
