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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of the examples in the epilog."""


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter, HelpFormatter):
    """Also shows every option's default (for commands whose help strings do not say it);
    flags that are off and options without a default say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def add_basics(parser: argparse.ArgumentParser) -> None:
    """What every command has: ``--version`` and examples at the end of ``--help``."""
    from attnseg import __version__
    from attnseg.cli.examples import epilog

    if "--version" not in parser._option_string_actions:
        parser.add_argument("--version", action="version", version=f"%(prog)s (attnseg) {__version__}")
    examples = epilog(parser.prog)
    if examples and "examples:" not in (parser.epilog or ""):
        parser.epilog = f"{parser.epilog}\n\n{examples}" if parser.epilog else examples
    if parser.formatter_class is argparse.HelpFormatter:
        parser.formatter_class = HelpFormatter


def run_command(body: Callable[[argparse.Namespace], int | None], parser: argparse.ArgumentParser,
                argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run ``body``; an ``AttnsegError`` becomes one line on stderr and exit 2."""
    add_basics(parser)
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
