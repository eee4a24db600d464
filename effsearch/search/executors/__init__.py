"""Executors run trials: ``inline`` (same process), ``local`` (worker processes), ``ray``.

The interface and its guarantees are in :mod:`effsearch.search.executors.base`; each module
registers its executor by name (:mod:`effsearch.builtins` imports them all).
"""

from __future__ import annotations

from effsearch.search.executors.base import (
    Executor,
    OnReport,
    Report,
    Status,
    TrialJob,
    TrialOutcome,
)

__all__ = ["Executor", "OnReport", "Report", "Status", "TrialJob", "TrialOutcome"]
