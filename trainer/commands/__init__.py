"""The `trainer` subcommands, one module each."""
