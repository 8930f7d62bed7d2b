"""One way to build a CLI out of per-command modules, shared by `labelgen` and `trainer`.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func` (the handler taking the parsed args and returning an exit status).
"""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from mugcore.errors import UserError


def build_parser(
    prog: str, description: str, commands: Sequence[ModuleType]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in commands:
        module.register(sub)
    return parser


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args) or 0
    except UserError as exc:
        # One readable line for the user; details of every problem go to stderr too.
        problems = getattr(exc, "problems", None) or []
        if len(problems) > 1:
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
