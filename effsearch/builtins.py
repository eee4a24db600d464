"""The one place that imports the built-in tasks, optimizers and executors, so that all their
names are registered. Importing it loads no torch and no Ray (tasks register declarations;
their implementations load when a trial builds them)."""

from __future__ import annotations

from effsearch.search import optimizers as optimizers
from effsearch.search.executors import inline as inline
from effsearch.search.executors import local as local
from effsearch.search.executors import ray_executor as ray_executor
from effsearch.tasks import catalog as catalog
