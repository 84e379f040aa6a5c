"""What every ``seg-*`` command shares: error handling, logging, JSON output."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Callable, Sequence

from attnseg.errors import AttnsegError


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--json`` on every command that reports."""
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors and the result")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def run_command(body: Callable[[argparse.Namespace], int | None], parser: argparse.ArgumentParser,
                argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run ``body``; an ``AttnsegError`` becomes one line on stderr and exit 2."""
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False) or getattr(args, "json", False)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    try:
        return int(body(args) or 0)
    except AttnsegError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))
