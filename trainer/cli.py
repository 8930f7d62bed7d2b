"""`trainer`: stage-3 multi-task training of MUG on stored uni-labels, and evaluation."""

import sys
from collections.abc import Sequence

from mugcore.cli import build_parser, run_cli
from trainer.commands import eval_command, run_command

COMMANDS = [run_command, eval_command]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("trainer", __doc__, COMMANDS)
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
