"""The `hanko` command line: parses arguments and wires collaborators, nothing more.

Conventions for every subcommand: `-c CONFIG` (or HANKO_CONFIG), `--help`, exit 0 on
success, nonzero with one readable line per problem on stderr, `--json` where the output
is data. Tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from core.errors import ConfigError, HankoError

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help="configuration file (default: $HANKO_CONFIG)",
    )


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


# -- subcommands ----------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from core.bootstrap import init_ca
    from core.clock import SystemClock
    from signer.algorithms import KeyType

    result = init_ca(
        args.directory,
        key_type=KeyType(args.key_type),
        clock=SystemClock(),
        base_url=args.base_url,
    )
    if args.json:
        _print_json(
            {
                "directory": str(result.directory),
                "config": str(result.config),
                "root_serial": f"{result.root.serial_number:x}",
                "issuing_serial": f"{result.issuing.serial_number:x}",
                "ocsp_responder_serial": f"{result.ocsp_responder.serial_number:x}",
            }
        )
    else:
        print(f"created a development CA in {result.directory}")
        print(f"configuration: {result.config}")
        print(f"next: hanko check-config -c {result.config}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from core.config import check_config, config_path

    path = config_path(args.config)
    _, problems = check_config(path)
    if problems:
        raise ConfigError(problems)
    if args.json:
        _print_json({"config": str(path), "ok": True})
    else:
        print(f"{path}: ok")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from core.config import load_config
    from core.service import serve

    serve(load_config(args.config))
    return 0


def cmd_bench_store(args: argparse.Namespace) -> int:
    from bench.store_commit import main as bench_main

    return bench_main(["--json"] if args.json else [])


def cmd_bench_signer(args: argparse.Namespace) -> int:
    from bench.signer_load import run_from_cli

    return run_from_cli(args)


# -- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hanko", description="hanko certificate authority back end")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("init", help="create a development CA (SoftHSM token, CA certs, LMDB)")
    p.add_argument("directory", type=Path, help="folder to create; must not exist or be empty")
    p.add_argument(
        "--key-type",
        default="ecdsa-p256",
        choices=["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"],
        help="key type of the root, issuing and OCSP keys (default: ecdsa-p256)",
    )
    p.add_argument(
        "--base-url",
        default=None,
        help="public http:// base URL written into AIA and CRL distribution points",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("check-config", help="validate a configuration file")
    _add_config(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("serve", help="run the service in the foreground")
    _add_config(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bench", help="run a benchmark")
    bench = p.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    b = bench.add_parser("store", help="durable writes/s: group commit against one commit each")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_bench_store)
    b = bench.add_parser("signer", help="signatures/s and latency through the batched signer")
    _add_config(b)
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    b.add_argument("--callers", default="1,16,256", help="comma-separated concurrent caller counts")
    b.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians reported)")
    b.set_defaults(func=cmd_bench_signer)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "base_url", "unset") is None:
        from core.bootstrap import DEFAULT_BASE_URL

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


if __name__ == "__main__":
    sys.exit(main())
