"""effsearch report: one offline page, rendered by a real headless browser (Debian's chromium;
.ci/run installs it): no console errors, the plots drawn, and a screenshot with the content."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from effsearch.cli import app

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PARETO_RED = (214, 39, 40)  # plots.COLORS["Pareto set"]
# Runs before the page's own scripts: records every error and console.error, then, after
# load, writes them and the number of drawn plotly plots onto <body> for --dump-dom to show.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message)));
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(' ')); __consoleError(...args); };
window.addEventListener('load', () => setTimeout(() => {
  document.body.setAttribute('data-errors', JSON.stringify(window.__errors));
  document.body.setAttribute('data-plots', document.querySelectorAll('.main-svg').length);
}, 500));
</script>"""


def cli(*args: str | Path) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--virtual-time-budget=20000", *args],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory, toy_recipe_writer: Callable[..., Path]
) -> Path:
    if CHROMIUM is None:
        pytest.skip("needs chromium (apt-get install chromium; .ci/run does)")
    folder = tmp_path_factory.mktemp("report")
    recipe = toy_recipe_writer(
        folder, entrypoint="fails_above_half", constraints=["f1 <= 0.8"], budget={"trials": 16}
    )
    assert cli("run", recipe, "--run-dir", folder / "run").exit_code in (0, 1)
    result = cli("report", folder / "run", "--out", folder / "report.html")
    assert result.exit_code == 0, result.output
    return folder / "report.html"


def test_the_page_renders_every_plot_without_console_errors(report: Path) -> None:
    page = report.read_text()
    probe = report.with_name("probe.html")
    probe.write_text(page.replace("<head>", "<head>" + PROBE, 1))

    dom = chromium("--dump-dom", probe.as_uri()).stdout

    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    errors = re.search(r'data-errors="([^"]*)"', body.group(1))
    plots = re.search(r'data-plots="(\d+)"', body.group(1))
    assert errors is not None and plots is not None, body.group(1)
    assert json.loads(errors.group(1).replace("&quot;", '"')) == []
    assert int(plots.group(1)) >= 3  # fronts, hypervolume, parallel coordinates


def test_the_page_holds_what_a_person_needs_offline(report: Path) -> None:
    page = report.read_text()

    assert "<script src=" not in page and "<link " not in page
    for text in (
        "Pareto set",
        "effsearch export",
        "--trial",
        "Failed trials",
        "Recipe",
        "f1 &lt;= 0.8",
        "hypervolume over trials",
    ):
        assert text in page, text


def test_a_screenshot_shows_the_pareto_points_and_text(report: Path) -> None:
    from matplotlib import image

    shot = report.with_name("shot.png")
    chromium("--window-size=1400,2400", f"--screenshot={shot}", report.as_uri())

    pixels = (image.imread(shot)[:, :, :3] * 255).round()
    dark = (pixels.max(axis=2) < 80).mean()
    red = (abs(pixels - PARETO_RED).max(axis=2) < 30).sum()
    assert dark > 0.002, "text is drawn"
    assert red > 50, "Pareto points are drawn in their colour"
