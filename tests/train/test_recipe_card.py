"""The recipe the model card shows (tools/recipe.py, tools/model_card.py), from real runs: a run,
two fine-tunes of the "release" it became, their weight average with it, and a fine-tune of that
average. Every step appears once, oldest first, and every command is one seg-train accepts."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from attnseg.cli.train import build_parser
from attnseg.cli.train import main as seg_train
from attnseg.models.checkpoint import read_checkpoint_file
from attnseg.train.soup import average_checkpoints
from tests.conftest import load_script

train_command = load_script("tools/model_card.py").train_command
_recipe = load_script("tools/recipe.py")
recipe_counts, recipe_of, recipe_steps = _recipe.recipe_counts, _recipe.recipe_of, _recipe.recipe_steps


def _train(tiny_kvasir, out: Path, *extra: str) -> Path:
    args = ["--data", f"kvasir:{tiny_kvasir}", "-o", str(out), "--base-width", "4", "--input-size", "64", "64",
            "--epochs", "1", "--batch-size", "4", "--test-count", "3", "--val-fraction", "0.2",
            "--workers", "0", "--threads", "1", "-q", *extra]
    assert seg_train(args) == 0
    return out / "best.pt"


@pytest.fixture(scope="module")
def soup_run(tiny_kvasir, tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    runs, zoo = root / "runs", root / "zoo"
    zoo.mkdir()
    first = _train(tiny_kvasir, runs / "a", "--input-interpolation", "area")
    release = zoo / "model.pt"
    shutil.copy(first, release)  # "shipped": later runs start from the zoo's file
    b = _train(tiny_kvasir, runs / "b", "--init-from", str(release), "--ema", "0.9", "--tile-crop-prob", "0.5",
               "--augmentation", "endoscope", "--augmentation-prob", "0.3")
    c = _train(tiny_kvasir, runs / "c", "--init-from", str(release), "--seed", "4")
    soup = runs / "soup.pt"
    average_checkpoints([release, b, c], soup, weights=[2, 1, 1], input_interpolation="linear")
    final = _train(tiny_kvasir, runs / "d", "--init-from", str(soup), "--lr", "0.0002")
    previous = read_checkpoint_file(release)
    shutil.copy(final, release)  # shipping overwrites the release: the recipe must not read it back
    return read_checkpoint_file(final), previous


def test_recipe_holds_every_run_and_the_average_once_oldest_first(soup_run):
    final, previous = soup_run
    recipe = recipe_of(final, read_checkpoint_file, previous)
    assert recipe_counts(recipe) == {"runs": 4, "averages": 1, "unrecorded": 0}
    steps = recipe_steps(recipe, train_command)
    text = "\n".join(steps)
    assert text.count("-o runs/a ") == 1  # the release is built once, though three steps start from it
    order = [text.index(s) for s in ("-o runs/a ", "release this model replaces", "-o runs/b ", "-o runs/c ",
                                     "average_checkpoints(", "-o runs/d ")]
    assert order == sorted(order)
    soup_line = next(s for s in steps if "average_checkpoints(" in s)
    assert "['runs/a/best.pt', 'runs/b/best.pt', 'runs/c/best.pt'], 'runs/soup.pt', weights=[0.5, 0.25, 0.25], input_interpolation='linear')" in soup_line
    commands = [s for s in steps if s.startswith("seg-train")]
    assert "--input-interpolation area" in commands[0]  # recorded, not the default
    assert "--ema 0.9" in commands[1] and "--tile-crop-prob 0.5" in commands[1]
    assert "--init-from runs/a/best.pt" in commands[1] and "--init-from runs/a/best.pt" in commands[2]
    assert "--init-from runs/soup.pt" in commands[3] and "--lr 0.0002" in commands[3]


def test_every_command_is_one_seg_train_accepts(soup_run):
    final, previous = soup_run
    parser = build_parser()
    for step in recipe_steps(recipe_of(final, read_checkpoint_file, previous), train_command):
        if step.startswith("seg-train"):
            argv = shlex.split(step.replace("\\\n", " "))[1:]
            args = parser.parse_args(argv)
            assert args.epochs == 1 and args.base_width == 4


def test_a_stored_recipe_wins_and_a_lost_source_is_named(soup_run, tmp_path):
    final, _ = soup_run
    lost = recipe_of(final, read_checkpoint_file, None)  # without the release: named, not invented
    assert recipe_counts(lost)["unrecorded"] == 1
    assert any("not kept" in s for s in recipe_steps(lost, train_command))
    stored = {**final, "trained_with": {**final["trained_with"], "recipe": {"train": {"data": "kvasir:x"}}}}
    assert recipe_of(stored, read_checkpoint_file, None) == {"train": {"data": "kvasir:x"}}
