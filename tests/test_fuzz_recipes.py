"""Recipe fuzzing: random mutations of valid recipes (types, ranges, keys, encodings, huge values,
empty files, YAML anchors and alias bombs, cut and garbled text) always end in a valid run or in
exit 2 with a message; never a traceback, never a hang.

The default variant tries ``EXAMPLES`` mutants per test; ``pytest -m long`` runs the long one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import toy_recipe_document, write_toy_recipe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from effsearch.cli import app

EXAMPLES, LONG_EXAMPLES = 120, 3000
QUICKSTART = Path(__file__).resolve().parent.parent / "effsearch" / "recipes" / "quickstart.yaml"
WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e-308, "", "1e5", "yes", "none", "nan", "∞", "x" * 5000]),
    st.text(max_size=30),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
TEXT_DAMAGE = st.sampled_from(["cut", "insert", "empty", "tabs", "duplicate", "bomb", "bytes"])


def alias_bomb() -> str:
    """A "billion laughs": nine levels of nine aliases each, 9**9 strings once expanded."""
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for parent, child in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{child}: &{child} [" + ",".join([f"*{parent}"] * 9) + "]")
    return "\n".join(levels) + "\n"


def bases(folder: Path) -> list[dict[str, Any]]:
    write_toy_recipe(folder)  # puts toy_tasks.py next to the mutants
    toy = toy_recipe_document(budget={"trials": 2})
    return [toy, yaml.safe_load(QUICKSTART.read_text())]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a document."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutants(draw: st.DrawFn, documents: list[dict[str, Any]]) -> str:
    """A damaged recipe as YAML text."""
    document = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from(documents))))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(document)))
        parent = document
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        action = draw(st.sampled_from(["replace", "delete", "rename", "add"]))
        if action == "replace":
            parent[last] = draw(WEIRD)
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, dict) and action == "rename":
            parent[str(last) + draw(st.sampled_from(["s", "_", "X"]))] = parent.pop(last)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(WEIRD)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()):
        return text
    damage = draw(TEXT_DAMAGE)
    at = draw(st.integers(0, len(text)))
    if damage == "cut":
        return text[:at]
    if damage == "insert":
        return text[:at] + draw(st.text(alphabet=":{}[]&*!|>-#'\"\t\n ", max_size=4)) + text[at:]
    if damage == "empty":
        return draw(st.sampled_from(["", "\n", "---\n", "# nothing\n", "~\n"]))
    if damage == "tabs":
        return text.replace("  ", "\t")
    if damage == "duplicate":
        return text + text.splitlines()[0] + "\n" if text.strip() else text
    if damage == "bomb":
        return alias_bomb() + text
    return text.encode().decode("latin-1")[:at] + "\udcff"  # not valid UTF-8 once written


RAN: dict[int, int] = {}  # exit code of `run` on valid mutants -> how many (for the summary)


def check(text: str, folder: Path, run: bool) -> Result:
    path = folder / "mutant.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code in (0, 2), (text, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.startswith("error:"), result.output
        return result
    if run:
        ran = runner.invoke(
            app, ["run", str(path), "--run-dir", str(folder / "run"), "--executor", "inline",
                  "--trials", "2", "--quiet"],
        )  # fmt: skip
        # 0: it ran; 1: every trial failed (a mutated range, say); 2: refused at the start
        assert ran.exit_code in (0, 1, 2), (text, ran.output, ran.exception)
        RAN[ran.exit_code] = RAN.get(ran.exit_code, 0) + 1
        assert "Traceback" not in ran.output
        for leftover in (folder / "run").glob("**/*"):
            if leftover.is_file():
                leftover.unlink()
    return result


def fuzz(tmp_path_factory: pytest.TempPathFactory, examples: int) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    documents = bases(folder)
    outcomes = {0: 0, 2: 0}

    @settings(max_examples=examples, deadline=20_000, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(text=mutants(documents), run=st.booleans())
    def one(text: str, run: bool) -> None:
        outcomes[check(text, folder, run and "toy_tasks" in text).exit_code] += 1

    one()
    print(f"fuzz: {examples} mutants, validate exit 0/2: {outcomes[0]}/{outcomes[2]}; run exit "
          f"codes of valid ones: {RAN}")  # fmt: skip
    assert outcomes[2] > 0  # the mutations do break recipes


def test_mutated_recipes_run_or_exit_2_with_a_message(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    fuzz(tmp_path_factory, EXAMPLES)


@pytest.mark.long
def test_mutated_recipes_long(tmp_path_factory: pytest.TempPathFactory) -> None:
    fuzz(tmp_path_factory, LONG_EXAMPLES)


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    result = check(alias_bomb(), tmp_path, run=False)

    assert result.exit_code == 2
    assert "YAML nodes" in result.output
