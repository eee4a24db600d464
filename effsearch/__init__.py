"""effsearch: multi-objective search over model adaptation and compression."""

__version__ = "0.1.0"

from typing import Any

__all__ = ["__version__", "evaluate_bundle", "load_bundle"]


def __getattr__(name: str) -> Any:
    # lazily, so `import effsearch` stays light (no torch) for the CLI and readers
    if name in ("load_bundle", "evaluate_bundle"):
        from effsearch.report import bundle

        return getattr(bundle, name)
    raise AttributeError(f"module 'effsearch' has no attribute {name!r}")
