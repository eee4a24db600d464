"""The test session's Ray cluster: a head node and a second node on loopback (``ray start``).

Every Ray test shares it through the ``ray_cluster`` fixture (conftest.py). The second node
has its own resource (``second``) so tests can find and kill it; :func:`start_second_node`
brings it back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PORT = 6391
ADDRESS = f"127.0.0.1:{PORT}"
RAY = str(Path(sys.executable).with_name("ray"))
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def ray_cli(*args: str) -> None:
    subprocess.run([RAY, *args], check=True, env=ENV, capture_output=True, timeout=120)


def start_head() -> None:
    """1 CPU, and whatever GPUs Ray detects."""
    ray_cli("start", "--head", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false")


def start_second_node() -> None:
    """1 CPU, no GPU (the head has them: one GPU must not count on two nodes)."""
    ray_cli(
        "start",
        f"--address={ADDRESS}",
        "--num-cpus=1",
        "--num-gpus=0",
        '--resources={"second": 1}',
    )


def stop_all() -> None:
    ray_cli("stop", "--force")
