"""Hydra ``key=value`` arguments in named groups, for harnesses that measure several
configurations in one command: ``a=1 NAME_KEY=first b=2 NAME_KEY=second c=3`` gives the
overrides before the first group (shared by all) and each group's own, in order."""

from __future__ import annotations


def group_overrides(args: list[str], name_key: str) -> tuple[list[str], dict[str, list[str]]]:
    """(the overrides before the first ``name_key=NAME``, {NAME: the overrides after it});
    ValueError for a group without a name or a name given twice."""
    shared: list[str] = []
    groups: dict[str, list[str]] = {}
    current = shared
    for arg in args:
        key, _, value = arg.partition("=")
        if key == name_key:
            if not value or value in groups:
                raise ValueError(f"{arg!r}: each {name_key}=NAME needs a name of its own")
            current = groups[value] = []
        else:
            current.append(arg)
    return shared, groups
