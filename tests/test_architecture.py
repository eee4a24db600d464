"""The layering promises of docs/architecture.md, checked on the source and in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import import_graph
import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500
LEAVES = (
    "effsearch.objectives.goals",
    "effsearch.objectives.pareto",
    "effsearch.errors",
    "effsearch.registry",
    "effsearch.version",
    "effsearch.secrets",
)


def test_no_import_cycle_among_effsearch_modules_lazy_imports_included() -> None:
    assert import_graph.cycles(import_graph.graph()) == []


def test_the_core_types_are_leaves() -> None:
    edges = import_graph.graph()
    for leaf in LEAVES:
        allowed = {"effsearch.errors"} if leaf == "effsearch.registry" else set()
        assert edges[leaf] <= allowed, f"{leaf} imports {edges[leaf] - allowed}"


def test_no_module_is_long_without_saying_why() -> None:
    for path in (ROOT / "effsearch").rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES:
            head = "\n".join(lines[:15]).lower()
            assert "long because" in head, f"{path.relative_to(ROOT)}: {len(lines)} lines"


def test_nothing_cites_a_design_file_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = ("shared/DESIGN", "DESIGN-NOTES", "DESIGN.md", "ARCHITECTURE-SKETCH")
    cited = [
        name
        for name in tracked
        if name != "tests/test_architecture.py"
        and (ROOT / name).is_file()
        and any(o in (ROOT / name).read_text(encoding="utf-8", errors="replace") for o in outside)
    ]
    assert cited == [], cited


def probe(args: list[str]) -> str:
    """Run ``effsearch ARGS`` in a fresh interpreter; its stderr ends with whether torch was
    imported and the exit code."""
    code = (
        "import sys, runpy\n"
        "sys.argv = ['effsearch', *sys.argv[1:]]\n"
        "code = 0\n"
        "try:\n    runpy.run_module('effsearch', run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "recipes/quickstart.yaml"],
        ["validate", "recipes/text-lora.yaml"],
        ["spaces"],
        ["--help"],
    ],
)
def test_read_commands_import_no_torch(args: list[str]) -> None:
    assert "NO-TORCH 0" in probe(args)


def test_show_and_plot_import_no_torch(write_recipe: Callable[..., Path], tmp_path: Path) -> None:
    import effsearch

    effsearch.run(write_recipe(), run_dir=tmp_path / "run")

    assert "NO-TORCH 0" in probe(["show", str(tmp_path / "run")])
    assert "NO-TORCH 0" in probe(["show", str(tmp_path / "run"), "--json"])
    assert "NO-TORCH 0" in probe(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "f.png")])
