"""Fast, deterministic entrypoint functions for executor, runner and CLI tests.

A recipe names them as ``task: {entrypoint: "toy_tasks:zdt1"}``; the ``write_recipe`` fixture
copies this file next to the recipe, where effsearch imports entrypoints from. Parameters live in
the group ``params``: ``x0, x1, x2`` in [0, 1], plus fixed knobs some functions read.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

Config = dict[str, dict[str, Any]]


def zdt1_values(x: list[float]) -> dict[str, float]:
    """ZDT1 (both minimized) and its ``g`` term, for ``x`` in [0, 1]^n."""
    f1 = x[0]
    g = 1.0 + 9.0 * sum(x[1:]) / (len(x) - 1)
    return {"f1": f1, "f2": g * (1.0 - math.sqrt(f1 / g)), "g": g}


def _xs(config: Config) -> list[float]:
    params = config["params"]
    return [float(params[f"x{i}"]) for i in range(3)]


def zdt1(config: Config) -> dict[str, float]:
    return zdt1_values(_xs(config))


def raises(config: Config) -> dict[str, float]:
    raise ValueError(f"toy failure at x0={config['params']['x0']}")


def fails_above_half(config: Config) -> dict[str, float]:
    """Fails for x0 > 0.5, so a search sees both outcomes."""
    if config["params"]["x0"] > 0.5:
        raise RuntimeError("x0 above one half")
    return zdt1(config)


def returns_nan(config: Config) -> dict[str, float]:
    return {**zdt1(config), "f2": float("nan")}


def returns_text(config: Config) -> dict[str, Any]:
    return {**zdt1(config), "f2": "fast"}


def returns_bool(config: Config) -> dict[str, Any]:
    return {**zdt1(config), "f2": True}


def returns_list(config: Config) -> Any:
    return list(zdt1(config).values())


def missing_f2(config: Config) -> dict[str, float]:
    values = zdt1(config)
    del values["f2"]
    return values


def sleeps(config: Config) -> dict[str, float]:
    """Sleeps ``params.sleep_s`` seconds, then scores like zdt1."""
    time.sleep(float(config["params"]["sleep_s"]))
    return zdt1(config)


def holds_a_gpu(config: Config) -> dict[str, float]:
    """Sleeps ``params.sleep_s`` seconds and says which GPU it was given (CUDA_VISIBLE_DEVICES,
    as Ray sets it) and when it ran (epoch seconds): scheduling tests need no real GPU."""
    started = time.time()
    time.sleep(float(config["params"]["sleep_s"]))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return zdt1(config) | {
        "visible_gpu": float(visible) if visible.isdigit() else -1.0,
        "started_s": started,
        "ended_s": time.time(),
    }


def dies(config: Config) -> dict[str, float]:
    """Ends its own process: ``params.how`` is ``sigkill`` or ``exit`` (status 3)."""
    sys.stdout.flush()
    if config["params"]["how"] == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(3)


def dies_above_half(config: Config) -> dict[str, float]:
    """Like ``dies`` for x0 > 0.5, else zdt1."""
    if config["params"]["x0"] > 0.5:
        dies(config)
    return zdt1(config)


def calls_sys_exit(config: Config) -> dict[str, float]:
    """What a function that parses ``sys.argv`` with argparse does on a bad argument."""
    sys.exit(2)


def chatty(config: Config) -> dict[str, float]:
    """Prints 2,000 lines to stdout and one to stderr."""
    for i in range(2000):
        print(f"chatty line {i} of trial with x0={config['params']['x0']}")
    print("chatty stderr line", file=sys.stderr)
    return zdt1(config)


def with_context(config: Config, ctx: Any) -> dict[str, float]:
    """Reports two intermediate steps through the TrialContext."""
    ctx.report(1, {"partial": 0.5})
    ctx.report(2, {"partial": 0.25})
    return {**zdt1(config), "trial_number": float(ctx.trial_number)}


def interrupts_once(config: Config, ctx: Any) -> dict[str, float]:
    """Sends SIGINT to its own process in trial ``params.interrupt_at`` (a Ctrl-C, inline)."""
    if ctx.trial_number == config["params"]["interrupt_at"]:
        marker = Path(config["params"]["marker"])
        if not marker.exists():
            marker.write_text("interrupted")
            os.kill(os.getpid(), signal.SIGINT)
    return zdt1(config)


def constant(config: Config) -> dict[str, float]:
    """The same point whatever the configuration: the hypervolume can never grow."""
    return {"f1": 0.5, "f2": 0.5}


def reports_progress(config: Config, ctx: Any) -> dict[str, float]:
    """Four 'epochs' whose f1 improves towards its final ZDT1 value; f1 is reported each epoch."""
    final = zdt1_values(_xs(config))
    for epoch in range(1, 5):
        ctx.report(epoch, {"f1": final["f1"] + (4 - epoch) * 0.1})
    return final


def reports_progress_and_cost(config: Config, ctx: Any) -> dict[str, float]:
    """Like :func:`reports_progress`, but f2 (a cost, say) is known from epoch 1 on."""
    final = zdt1_values(_xs(config))
    for epoch in range(1, 5):
        ctx.report(epoch, {"f1": final["f1"] + (4 - epoch) * 0.1, "f2": final["f2"]})
    return final


def dies_once(config: Config, ctx: Any) -> dict[str, float]:
    """Kills its worker on the first attempt (a marker in the trial folder), then scores."""
    marker = Path(ctx.trial_dir) / "attempted"
    if not marker.exists():
        marker.write_text("1")
        os.kill(os.getpid(), signal.SIGKILL)
    return zdt1(config)


def floods_stdout(config: Config) -> dict[str, float]:
    """Prints 8 MB to stdout in one go, then scores."""
    sys.stdout.write(("x" * 1023 + "\n") * 8192)
    return zdt1(config)


def nan_above_half(config: Config) -> dict[str, float]:
    """Returns NaN (or inf) for x0 > 0.5, so a search sees both."""
    x0 = config["params"]["x0"]
    if x0 > 0.5:
        return {"f1": float("nan"), "f2": float("inf") if x0 > 0.75 else 1.0}
    return zdt1(config)


def allocates(config: Config) -> dict[str, float]:
    """Allocates 64 MB blocks, touched, without end (when x0 > 0.5), else scores."""
    if config["params"]["x0"] > 0.5:
        blocks = []
        while True:
            blocks.append(bytearray(64 * 2**20))
    return zdt1(config)


def sized(config: Config) -> dict[str, float]:
    """zdt1 plus two configuration-only metrics (``params``, ``size_mb``), as a model's are."""
    xs = _xs(config)
    return zdt1(config) | {"params": 1000.0 * (1 + xs[0]), "size_mb": 4.0 * (1 - xs[0]) + xs[1]}


def costly(config: Config) -> dict[str, float]:
    """zdt1 plus ``cost_ms``, a cost that grows with x0 and x1 (1 to 11 ms), as latency grows
    with a model's width."""
    xs = _xs(config)
    return zdt1(config) | {"cost_ms": 1.0 + 8.0 * xs[0] + 2.0 * xs[1] ** 2}
