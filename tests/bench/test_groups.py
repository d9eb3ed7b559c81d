"""The benchmark harnesses' key=value grouping (benchmarks/groups.py and convergence_cost's
levers): shared overrides, each group's own, and the one-line refusals."""

from __future__ import annotations

import pytest

from benchmarks.convergence_cost import group_levers
from benchmarks.groups import group_overrides


def test_overrides_before_the_first_group_are_shared_and_groups_keep_their_order():
    shared, groups = group_overrides(
        ["a=1", "corpus=small", "b=2", "corpus=large", "c=3", "d=4"], "corpus"
    )
    assert shared == ["a=1"]
    assert groups == {"small": ["b=2"], "large": ["c=3", "d=4"]}
    assert list(groups) == ["small", "large"]


@pytest.mark.parametrize("args", [["corpus=", "a=1"], ["corpus=x", "corpus=x"]])
def test_a_group_needs_a_name_of_its_own(args):
    with pytest.raises(ValueError, match=r"each corpus=NAME needs a name of its own"):
        group_overrides(args, "corpus")


def test_levers_without_overrides_are_the_preset_and_overrides_before_a_lever_are_refused():
    assert group_levers(["lever=base", "lever=untied", "model.tie_embeddings=false"]) == {
        "base": [],
        "untied": ["model.tie_embeddings=false"],
    }
    with pytest.raises(ValueError, match=r"'data.vocab.size=2000' comes before any lever=NAME"):
        group_levers(["data.vocab.size=2000", "lever=small"])
    with pytest.raises(ValueError, match=r"give at least one lever=NAME"):
        group_levers([])
