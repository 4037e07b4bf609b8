"""The `personas` command. Each subcommand lives beside the stage it serves and exposes
`add_arguments(parser)` and `run(args) -> int`; the table below only names them."""
from __future__ import annotations

import argparse
import importlib
import sys

import flows  # noqa: F401  (pins the offline environment first)
from flows.errors import PipelineInputError

# name -> (module holding add_arguments/run, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personas", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module_name=module_name)
        importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args.module_name).run(args) or 0)
    except PipelineInputError as error:
        print(f"personas {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
