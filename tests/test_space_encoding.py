"""The unit-cube encoding model-based optimizers search in: valid configurations only."""

from __future__ import annotations

import numpy as np

from effsearch.search.space_encoding import SpaceEncoding
from effsearch.spaces.knobs import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    Knob,
    SearchSpace,
)

SPACE = SearchSpace(
    [
        Knob("p", "method", CategoricalDistribution(("none", "magnitude", "channel"))),
        Knob(
            "p",
            "sparsity",
            FloatDistribution(0.1, 0.9),
            when=(("p.method", ("magnitude", "channel")),),
        ),
        Knob("q", "scheme", CategoricalDistribution(("fp32", "int8"))),
        Knob("a", "depth", IntDistribution(1, 4)),
    ]
)
ENCODING = SpaceEncoding(SPACE)


def row(**params: object) -> np.ndarray:
    return ENCODING.encode({k.replace("__", "."): v for k, v in params.items()})


def test_model_inputs_give_each_choice_its_index_and_inactive_its_own_category():
    rows = np.vstack(
        [
            row(p__method="channel", p__sparsity=0.5, q__scheme="int8", a__depth=1),
            row(p__method="none", q__scheme="fp32", a__depth=4),
        ]
    )
    inputs = ENCODING.model_inputs(rows)
    categorical = ENCODING.model_categorical

    assert inputs.shape == (2, 4) and categorical == [0, 1]
    assert inputs[0, :2].tolist() == [2, 1]  # channel, int8
    assert inputs[1, :2].tolist() == [0, 0]
    assert inputs[0, 2] == 0.5  # sparsity 0.5 in [0.1, 0.9]
    assert inputs[1, 3] == 1.0  # depth 4 of 1..4


def test_an_inactive_choice_knob_is_a_category_of_its_own():
    nested = SearchSpace(
        [
            Knob("p", "method", CategoricalDistribution(("none", "channel"))),
            Knob(
                "p",
                "importance",
                CategoricalDistribution(("l1", "l2")),
                when=(("p.method", ("channel",)),),
            ),
        ]
    )
    encoding = SpaceEncoding(nested)
    inactive = encoding.encode({"p.method": "none"})
    active = encoding.encode({"p.method": "channel", "p.importance": "l1"})
    assert encoding.model_inputs(np.vstack([inactive, active]))[:, 1].tolist() == [2, 0]
