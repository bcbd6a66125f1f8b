"""The `hanko` parser: every command that prints data takes --json."""

from __future__ import annotations

import argparse

from core.main import build_parser

# Commands that print no data: the service itself.
NO_DATA = {"serve", "responder", "perspective serve"}  # services: they print no data


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[str, set[str]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {" ".join(path): {o for a in parser._actions for o in a.option_strings}}
    out: dict[str, set[str]] = {}
    for action in subs:
        for name, sub in action.choices.items():
            out.update(leaves(sub, (*path, name)))
    return out


def test_every_command_that_prints_data_takes_json() -> None:
    commands = leaves(build_parser())
    assert len(commands) > 40
    missing = sorted(c for c, opts in commands.items() if "--json" not in opts and c not in NO_DATA)
    assert missing == []


def test_every_command_takes_a_config_but_init() -> None:
    commands = leaves(build_parser())
    missing = sorted(
        # init makes the config; the store, search, Redis client and replication benches need no
        # CA; store copy names two configurations (--from and --to)
        c
        for c, opts in commands.items()
        if "-c" not in opts
        and c
        not in {
            "init",
            "bench store",
            "bench search",
            "bench redis-clients",
            "bench replication",
            "store copy",
        }
    )
    assert missing == []
