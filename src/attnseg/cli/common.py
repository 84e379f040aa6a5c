"""What every ``seg-*`` command shares: error handling, logging, JSON output, flags generated
from options dataclasses, and old flag spellings that still parse for one release (with a warning)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

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


# ---------------------------------------------------------------------------- flags from dataclasses
def flag_name(field_name: str) -> str:
    """The long flag of a field: ``inference_precision`` -> ``--inference-precision``."""
    return "--" + field_name.replace("_", "-")


def add_dataclass_flags(parser: argparse.ArgumentParser | Any, cls: type, title: str | None = None,
                        exclude: Sequence[str] = (),
                        compat: dict[str, Sequence[str]] | None = None) -> argparse._ActionsContainer:
    """One flag per field of ``cls`` that declares a ``help`` (``runtime.options.cli_field``):
    ``--<name>`` plus the field's aliases, its default, choices and type; every deprecated
    spelling is a hidden alias that warns (anomalib's idiom: the flags are the options object).
    ``compat``: extra spellings a command keeps for another tool's users (benchmark_app's
    ``-nstreams``), listed in its --help beside the generated flag."""
    group = parser.add_argument_group(title) if title else parser
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta or f.name in exclude:
            continue
        default = f.default
        default = getattr(default, "value", default)
        kw = dict(meta.get("argparse", {}))
        help_text = meta["help"] + ("" if default is None else " (default: %(default)s)")
        names = (*meta.get("aliases", ()), flag_name(f.name), *(compat or {}).get(f.name, ()))
        group.add_argument(*names, dest=f.name, default=default, help=help_text, **kw)
        for old in meta.get("deprecated", ()):
            add_deprecated_alias(group, old, flag_name(f.name), dest=f.name, **kw)
    return group


def options_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """Build ``cls`` back from the parsed flags ``add_dataclass_flags`` added (``overrides`` win)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if "help" in f.metadata and hasattr(args, f.name)}
    values.update(overrides)
    return cls(**values)


class _DeprecatedAlias(argparse.Action):
    """An old spelling: stores like the new flag and says on stderr which flag replaces it."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        warn_deprecated(parser.prog, option_string or self.option_strings[0], self.new)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def warn_deprecated(prog: str, old: str, new: str) -> None:
    """One line on stderr; the old spelling still works until the next release."""
    print(f"{prog}: warning: {old} is deprecated and will be removed in the next release; use {new}",
          file=sys.stderr)


def add_deprecated_alias(parser: argparse._ActionsContainer, old: str, new: str, dest: str,
                         flag: bool = False, **kwargs: Any) -> None:
    """``old`` parses like ``new`` (same ``dest``, type and choices), hidden from --help, and warns.
    ``flag``: a switch that takes no value."""
    kwargs.pop("default", None)
    if flag:
        kwargs = {"nargs": 0}
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, new=new, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS, **kwargs)


# ---------------------------------------------------------------------------- one grammar for data and splits
DATA_HELP = ("data set: KIND:PATH (kvasir, isic, folder, camvid, cityscapes, isbi) or a folder with images/ and "
             "masks/")


def image_source(value: str | None) -> Any:
    """An images flag in the one data grammar: a folder stays a path; ``KIND:PATH`` becomes the
    data set's image paths (read here: the libraries below the CLI take a folder or a list)."""
    if value is None or ":" not in str(value) or Path(str(value)).expanduser().is_dir():
        return value
    from attnseg.data import open_dataset

    return [s.image for s in open_dataset(str(value)).samples]


def add_split_flag(parser: argparse._ActionsContainer, default_name: str, what: str) -> None:
    """``--split FILE:NAME`` (a seg-train split file and the split in it) or ``--split NAME`` (the
    data set's own split; ``all``: every image); the old ``--split-name NAME`` still parses and warns."""
    parser.add_argument("--split", metavar="FILE:NAME", default=None,
                        help=f"split {what}: FILE:NAME (a split file, e.g. RUN/split.json:{default_name}; NAME "
                             f"defaults to {default_name}) or NAME alone (the data set's own split; all = every image)")
    add_deprecated_alias(parser, "--split-name", "--split FILE:NAME", dest="split_name")


def split_from_args(args: argparse.Namespace, default_name: str,
                    file_required: bool = False) -> tuple[str | None, str]:
    """``(file or None, name)`` from ``--split FILE:NAME`` (or the old ``--split-name``).
    ``file_required``: the command has no data set splits of its own, so a bare NAME is an error."""
    from attnseg.errors import InvalidOptionError

    file, name = parse_split(getattr(args, "split", None))
    if file_required and file is None and name is not None:
        raise InvalidOptionError(f"--split {getattr(args, 'split', None) or ''} names no split file; give --split "
                                 f"FILE:NAME, e.g. RUN/split.json:{name or default_name}.")
    old = getattr(args, "split_name", None)
    if old is not None:
        if name is not None and name != old:
            raise InvalidOptionError(f"--split names split {name!r} and --split-name {old!r}; give --split FILE:NAME.")
        name = old
    return file, name or default_name


def parse_split(value: str | None) -> tuple[str | None, str | None]:
    """``FILE:NAME`` -> (FILE, NAME); ``FILE`` -> (FILE, None); a bare ``NAME`` (no path characters,
    not an existing file) -> (None, NAME). A colon followed by a path is part of the path."""
    if not value:
        return None, None
    text = str(value)
    head, sep, tail = text.rpartition(":")
    if sep and tail and not any(c in tail for c in "/\\."):
        return (head or None), tail
    if not sep and all(c.isalnum() or c in "_-" for c in text) and not Path(text).is_file():
        return None, text
    return text, None
