"""effsearch: multi-objective search over model adaptation and compression.

The Python API: :func:`run` a search and :func:`load` a run's results (``effsearch.api``);
:func:`load_bundle` and :func:`evaluate_bundle` for exported trials. Attributes load lazily, so
``import effsearch`` stays light (no torch) for the command line and readers.
"""

from typing import Any

from effsearch.version import __version__

__all__ = ["RunResult", "__version__", "evaluate_bundle", "load", "load_bundle", "run"]


def __getattr__(name: str) -> Any:
    if name in ("load_bundle", "evaluate_bundle"):
        from effsearch.report import bundle

        return getattr(bundle, name)
    if name in ("run", "load", "RunResult"):
        from effsearch import api

        return getattr(api, name)
    raise AttributeError(f"module 'effsearch' has no attribute {name!r}")
