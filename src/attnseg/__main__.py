"""``python -m attnseg``: the commands, and ``python -m attnseg COMMAND ...`` runs one of them.

``python -m attnseg models`` lists the registered architectures.
"""

from __future__ import annotations

import importlib
import sys

#: command -> (module under attnseg.cli, one line of what it does)
COMMANDS = {
    "train": ("train", "train a model on a data set (seg-train)"),
    "eval": ("evaluate", "score a checkpoint on a split at the images' own size (seg-eval)"),
    "export": ("export", "checkpoint -> ONNX + OpenVINO IR, parity-checked; no argument: the main job (seg-export)"),
    "optimize": ("optimize", "INT8 (NNCF) or FP16 from an IR or a checkpoint (seg-optimize)"),
    "infer": ("infer", "segment images, folders, videos or a camera (seg-infer)"),
    "benchmark": ("benchmark", "latency reports; 'benchmark compare' for every backend (seg-benchmark)"),
    "serve": ("serve", "KServe v2 server over an IR (seg-serve)"),
}


def usage() -> str:
    from attnseg import __version__

    lines = [f"attnseg {__version__}: attention U-Nets from a PyTorch checkpoint to OpenVINO inference.", "",
             "usage: python -m attnseg COMMAND [options]   (or the seg-COMMAND console script)", "", "commands:"]
    lines += [f"  {name:<10} {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["  models     list the registered architectures", "",
              "python -m attnseg COMMAND --help shows a command's options and examples."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from attnseg import __version__

        print(f"attnseg {__version__}")
        return 0
    if argv[0] in ("models", "list-models"):
        from attnseg.cli.train import format_models

        print(format_models())
        return 0
    if argv[0] not in COMMANDS:
        print(f"python -m attnseg: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"attnseg.cli.{COMMANDS[argv[0]][0]}")
    sys.argv[0] = f"seg-{argv[0]}"
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
