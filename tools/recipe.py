"""The recipe of a checkpoint: the training runs and weight averages that made it, oldest first.

A shipped model can be a fine-tune of a weight average (``attnseg.train.soup``) of fine-tunes of
the release it replaces. Its checkpoint records one step back (``init_from`` or
``weight_average_of``); ``recipe_of`` follows those links through the files still on disk into
one tree, and ``tools/ship_model.py`` stores that tree in the shipped checkpoint
(``trained_with["recipe"]``), so the card can show the whole chain after the run folders and
the replaced release are gone. ``recipe_steps`` renders the tree as the commands to re-run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnseg.metadata import LEGACY_INTERPOLATION

Reader = Callable[[Path], dict[str, Any]]
ZOO_PART = "zoo"
PREVIOUS_RELEASE = "runs/previous_release.pt"


def _is_zoo(path: str) -> bool:
    return ZOO_PART in Path(path).parts


def recipe_of(raw: dict[str, Any], read: Reader, previous: dict[str, Any] | None = None,
              depth: int = 12) -> dict[str, Any]:
    """The recipe tree of checkpoint ``raw`` (a ``read_checkpoint_file`` dict).

    Nodes: ``{"train": config, "from": node}``, ``{"average": [{"weight": w, "model": node}]}``,
    ``{"release": node}`` (the release this one replaces: a zoo path inside the recipe) and
    ``{"checkpoint": path}`` for a source that is no longer on disk. ``previous`` is that
    release's checkpoint dict (the zoo file is overwritten when shipping)."""
    tw = raw.get("trained_with") or {}
    if tw.get("recipe"):  # a shipped model carries its own, resolved when it shipped
        return tw["recipe"]
    if tw.get("weight_average_of"):
        weights = tw.get("weight_average_weights") or [1.0 / len(tw["weight_average_of"])] * len(tw["weight_average_of"])
        return {"average": [{"weight": float(w), "model": _source(p, read, previous, depth - 1)}
                            for p, w in zip(tw["weight_average_of"], weights)],
                "input_interpolation": raw.get("input_interpolation") or LEGACY_INTERPOLATION}
    config = dict(tw.get("config") or {})
    if not config:
        return {"checkpoint": "?"}
    # the checkpoint's own field is what the run resized with (runs from before it: area)
    config["input_interpolation"] = raw.get("input_interpolation") or LEGACY_INTERPOLATION
    init = tw.get("init_from") or config.get("init_from")
    node: dict[str, Any] = {"train": config}
    epoch = (raw.get("metrics") or {}).get("epoch")
    if isinstance(epoch, (int, float)):
        node["selected_epoch"] = int(epoch)
    if init:
        node["from"] = _source(str(init), read, previous, depth - 1)
    return node


def display_path(path: str) -> str:
    """``path`` as the recipe names it, relative to the repository: the zoo's file, a run's
    ``runs/NAME/best.pt``, or ``runs/FILE`` for a checkpoint written outside a run folder."""
    p = Path(path)
    if _is_zoo(path):
        return f"src/attnseg/zoo/{p.name}"
    if p.name in ("best.pt", "last.pt"):
        return f"runs/{p.parent.name}/{p.name}"
    return f"runs/{p.name}"


def _epochs_run(path: Path, read: Reader) -> int | None:
    """Epochs a run folder's training got through (its last.pt), when the folder is there."""
    last = path.with_name("last.pt")
    if path.name != "best.pt" or not last.is_file():
        return None
    state = (read(last).get("extra") or {}).get("train_state") or {}
    history = state.get("history")
    return len(history) if isinstance(history, list) else None


def _source(path: str, read: Reader, previous: dict[str, Any] | None, depth: int) -> dict[str, Any]:
    """The node of the checkpoint file ``path`` names, with its display path (``"path"``)."""
    shown = display_path(path)
    if depth <= 0:
        return {"checkpoint": shown, "path": shown}
    if _is_zoo(path):  # the shipped file at the time: the release being replaced
        if previous is None:
            return {"checkpoint": shown, "path": shown}
        return {"release": recipe_of(previous, read, None, depth), "path": shown}
    if not Path(path).is_file():
        return {"checkpoint": shown, "path": shown}
    node = {**recipe_of(read(Path(path)), read, previous, depth), "path": shown}
    ran = _epochs_run(Path(path), read) if "train" in node else None
    if ran is not None:
        node["epochs_run"] = ran
    return node


def _output_of(node: dict[str, Any], fallback: str) -> str:
    """Where re-running ``node`` writes its checkpoint: a run's best.pt, else the recorded path."""
    if "train" in node:
        return f"runs/{Path(node['train'].get('output_dir', fallback)).name}/best.pt"
    return node.get("path", fallback)


def recipe_steps(node: dict[str, Any], command: Callable[[dict[str, Any], str, str | None], str],
                 output: str = "runs/shipped.pt") -> list[str]:
    """Shell lines that rebuild ``node`` into ``output``, oldest step first; each distinct source
    appears once. ``command(config, run_folder, init_from)`` renders one ``seg-train`` line."""
    return [line for _, line in _steps(node, command, output)]


def recipe_counts(node: dict[str, Any]) -> dict[str, int]:
    """How many distinct training runs, weight averages and unrecorded sources the recipe holds."""
    kinds = [kind for kind, _ in _steps(node, lambda config, folder, source: "", "runs/shipped.pt")]
    return {"runs": kinds.count("run"), "averages": kinds.count("average"), "unrecorded": kinds.count("lost")}


def _steps(node: dict[str, Any], command: Callable[[dict[str, Any], str, str | None], str],
           output: str) -> list[tuple[str, str]]:
    """(kind, line) of every step, oldest first: kind is run, average, lost or note."""
    lines: list[tuple[str, str]] = []
    made: dict[str, str] = {}  # output asked for -> the path that holds it

    def visit(n: dict[str, Any], out: str) -> str:
        if out not in made:
            made[out] = step(n, out)
        return made[out]

    def step(n: dict[str, Any], out: str) -> str:
        if "checkpoint" in n:
            lost = (f"# {n['checkpoint']}: not kept; its recipe is not recorded in the weights "
                    "(earlier model cards in git history list theirs)")
            lines.append(("lost", lost))
            return n["checkpoint"]
        if "release" in n:
            inner = visit(n["release"], _output_of(n["release"], PREVIOUS_RELEASE))
            lines.append(("note", f"# {inner}: the release this model replaces ({n.get('path', 'the zoo file')} before)"))
            return inner
        if "average" in n:
            parts = [(visit(item["model"], _output_of(item["model"], f"runs/ingredient{i}.pt")), item["weight"])
                     for i, item in enumerate(n["average"])]
            paths = ", ".join(repr(p) for p, _ in parts)
            weights = ", ".join(f"{w:.4g}" for _, w in parts)
            call = (f"average_checkpoints([{paths}], '{out}', weights=[{weights}], "
                    f"input_interpolation='{n.get('input_interpolation', LEGACY_INTERPOLATION)}')")
            lines.append(("average", f"python -c \"from attnseg.train.soup import average_checkpoints; {call}\""))
            return out
        source = visit(n["from"], _output_of(n["from"], "runs/start.pt")) if "from" in n else None
        lines.append(("run", command(n["train"], str(Path(out).parent), source)))
        planned = n["train"].get("epochs")
        if n.get("epochs_run") is not None and planned and n["epochs_run"] < planned:
            lines.append(("note", f"# stopped after {n['epochs_run']} of {planned} epochs"))
        if n.get("selected_epoch") is not None:
            lines.append(("note", f"# {out}: the weights of epoch {n['selected_epoch']} (best validation Dice)"))
        return out

    visit(node, _output_of(node, output))
    return lines
