"""The `personas` command. Each subcommand lives beside the stage it serves and exposes
`add_arguments(parser)` and `run(args) -> int`; the table below only names them."""
from __future__ import annotations

import argparse
import importlib
import sys

import flows  # noqa: F401  (pins the offline environment first)
from flows.lib.errors import PipelineInputError

# name -> (module holding add_arguments/run, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "repro": ("flows.repro", "`dvc repro` with one Prefect server for every stage (make run)"),
    "train": ("flows.train", "train one AMN variant (default: params amn.variant) and score it on the test split"),
    "serve": ("flows.serve", "register the weekly re-crawl and on-demand training deployments and run them"),
    "crawl": ("flows.crawl", "crawl TVTropes, IMDb quotes and IMSDb scripts into crawls/ (needs the internet; resumable)"),
    "doctor": ("flows.doctor", "check package pins, offline models, data files, GPU and offline settings"),
    "chat": ("flows.chat", "talk to the PESS-GEN supporter: seeker turns from stdin, replies with strategy and persona"),
    "report": ("flows.report", "write reports/report.html: scores, confusion, purity, character map and attention"),
    "neighbours": ("flows.explore", "a character's nearest characters by cosine similarity of the AMN embedding"),
    "explain": ("flows.explore", "a character's snippets sorted by the AMN's inter-snippet attention"),
    "classify": ("flows.explore", "top tropes of one character of a screenplay file, by the trained AMN"),
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
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "repro":  # repro hands its options (-f, -s, ...) to `dvc repro`
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.dvc_args = [*unknown, *args.dvc_args]
    try:
        return int(importlib.import_module(args.module_name).run(args) or 0)
    except PipelineInputError as error:
        print(f"personas {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
