"""Run directories -> records: variant labels, the budget's axis."""

from __future__ import annotations

from pathlib import Path

from seq2seq.compare import variant_label


def test_variant_labels():
    assert variant_label({"model": {"name": "transformer"}}) == "transformer"
    assert (
        variant_label(
            {"model": {"name": "rnn"}, "attention": {"name": "multiplicative", "score": "dot"}}
        )
        == "multiplicative/dot"
    )
    assert (
        variant_label(
            {
                "model": {"name": "rnn"},
                "attention": {"name": "local", "mode": "monotonic", "score": "general"},
            }
        )
        == "local-m/general"
    )
    assert (
        variant_label(
            {"model": {"name": "rnn"}, "attention": {"name": "additive", "wiring": "luong"}}
        )
        == "additive (luong)"
    )


def test_curves_against_updates_only_when_the_budget_was_in_updates():
    from seq2seq.compare.runs import RunRecord, budget_axis

    def run(max_steps, max_time, stopped_by):
        config = {"trainer": {"max_steps": max_steps, "max_time": max_time}}
        return RunRecord(Path("r"), "finished", "x", config, {"stopped_by": stopped_by})

    assert budget_axis([run(4, None, "max_steps"), run(4, None, "early_stopping")]) == "updates"
    assert budget_axis([run(4, 1080, "max_steps")]) == "updates"  # the time cap never bound
    assert budget_axis([run(4, 1080, "max_steps"), run(4, 1080, "max_time")]) == "time"
    assert budget_axis([run(None, 600, "max_time")]) == "time"
    assert budget_axis([run(4, 1080, None)]) == "time"  # not recorded: not claimed
