"""`personas repro`: `dvc repro` with one Prefect server for all its stages (`make run` calls it).

Every stage is a Prefect flow; run alone, each would start Prefect's temporary server. Here
one server starts first, every stage connects to it, and it stops when `dvc repro` ends, fails
or is interrupted. Extra arguments go to `dvc repro` (`personas repro evaluate`, `-s`, ...)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import flows  # noqa: F401  (pins the offline environment and PREFECT_HOME first)
from flows.lib.prefect_server import shared_server

SERVER_LOG = Path(os.environ["PREFECT_HOME"]) / "server.log"  # PREFECT_HOME: pinned by flows/__init__.py


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dvc_args", nargs=argparse.REMAINDER, help="arguments for `dvc repro` (targets, -s, -f, ...)")


def run(args: argparse.Namespace) -> int:
    with shared_server(SERVER_LOG) as api_url:
        print(f"personas repro: Prefect server at {api_url}", file=sys.stderr, flush=True)
        return subprocess.call([sys.executable, "-m", "dvc", "repro", *args.dvc_args])
