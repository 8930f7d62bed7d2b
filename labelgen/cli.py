"""`labelgen`: dataset tools, uni-label generation, reports, the label store and the worker."""

import sys
from collections.abc import Sequence

from labelgen.commands import (
    data_commands,
    label_commands,
    report_command,
    run_command,
    store_commands,
    synth_command,
    worker_command,
)
from mugcore.cli import build_parser, run_cli

COMMANDS = [
    data_commands, synth_command, run_command, report_command, store_commands, label_commands,
    worker_command,
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("labelgen", __doc__, COMMANDS)
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
