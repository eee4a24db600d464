"""Training knobs: learning rate, epochs, batch size."""

from __future__ import annotations

from effsearch.spaces.knobs import KnobDecl

LR = KnobDecl.float("lr", 1e-6, 1.0, 3e-3, "Adam learning rate")
EPOCHS = KnobDecl.int("epochs", 1, 1000, 15, "passes over the training split")
BATCH_SIZE = KnobDecl.int("batch_size", 1, 4096, 64, "training mini-batch size")

KNOBS = (LR, EPOCHS, BATCH_SIZE)
