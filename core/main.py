"""The `hanko` command line: builds the parser from every command group and runs one.

Conventions for every subcommand: `-c CONFIG` (or HANKO_CONFIG), `--help`, exit 0 on
success, nonzero with one readable line per problem on stderr, `--json` where the output
is data. Tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence

from bench import cli as bench_cmd
from core.base.errors import ConfigError, HankoError
from core.cmd import (
    acme,
    backup,
    ca,
    caa,
    certs,
    certs_search,
    keys,
    notify,
    orgs,
    perspective,
    renewals,
    replication,
    responder_host,
    serve,
    status,
    store,
    tls,
)
from core.cmd import licenses as licenses_cmd
from core.cmd.common import EXIT_FAILURE, Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hanko", description="hanko certificate authority back end")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    groups = (
        ca,
        serve,
        keys,
        tls,
        acme,
        orgs,
        licenses_cmd,
        certs,
        certs_search,
        renewals,
        caa,
        status,
        backup,
        store,
        notify,
        replication,
        responder_host,
        perspective,
        bench_cmd,
    )
    for group in groups:
        group.register(sub)
    return parser


def _fail(lines: Sequence[str]) -> int:
    for line in lines:
        sys.stderr.write(f"hanko: error: {line}\n")
    return EXIT_FAILURE


def _leaf(exc: BaseException) -> BaseException:
    """The error to report from a trio nursery's exception group: a HankoError or a
    KeyboardInterrupt if there is one (anything else stays a bug with a traceback)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [_leaf(e) for e in exc.exceptions]
        for wanted in (HankoError, KeyboardInterrupt):
            for leaf in leaves:
                if isinstance(leaf, wanted):
                    return leaf
    return exc


# Every `hanko` process is a core process: one trio thread that feeds the signer workers
# and answers requests, plus helper threads (the store writer's group commits, CSR
# intake) that run whole batches of Python under the GIL. At CPython's default 5 ms
# switch interval the trio thread waits up to that long for the GIL behind a commit, and
# the workers' pipes run dry meanwhile. Refreshing 300,000 certificates: 6,700-7,200/s
# at 5 ms (three runs), 7,100-8,200/s at 0.5-2 ms (five runs; docs/architecture.md).
SWITCH_INTERVAL = 0.002

# The cyclic collector's first generation runs after 700 net allocations of container
# objects by default. A refresh keeps tens of thousands of small tracked objects in
# flight (signer requests, pending batches), so at 700 the collector ran about 7 times
# per 1,000 certificates, walking the same live objects again and again: 15-20% of the
# core's CPU per refreshed response. Almost everything the hot paths allocate dies by
# reference counting, so at 20,000 a refresh of 200,000 certificates collects twice
# (40-43 against 32-36 us of core CPU per response, docs/architecture.md).
GC_THRESHOLD = 20_000


def tune_interpreter() -> None:
    """Every `hanko` process is a core process (see above): set what it needs of CPython."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(GC_THRESHOLD)


def main(argv: Sequence[str] | None = None) -> int:
    tune_interpreter()
    args = build_parser().parse_args(argv)
    if getattr(args, "base_url", "unset") is None:
        from core.ca.bootstrap import DEFAULT_BASE_URL

        args.base_url = DEFAULT_BASE_URL
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        try:
            return func(args)
        except BaseExceptionGroup as group:
            raise _leaf(group) from group
    except ConfigError as exc:
        return _fail(exc.problems or [exc.message])
    except HankoError as exc:
        return _fail([exc.message])
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`hanko crl urls | head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
