"""seg-export --samples takes the one data grammar: a folder of images or a data set KIND:PATH;
-o/--output names the folder (the old --output-dir still works)."""

from __future__ import annotations

import json
import shutil

import torch

from attnseg.cli.export import main
from attnseg.models import create_model
from tests.export.export_helpers import centred


def test_parity_samples_from_a_data_set_spec(tmp_path, shared_data, capsys):
    root = tmp_path / "pairs"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for src in sorted((shared_data / "kvasir-seg" / sub).iterdir())[:2]:
            shutil.copy(src, root / sub / src.name)
    sd = tmp_path / "reference.pth"
    torch.save(centred(create_model("U_Net", base_width=4)).state_dict(), sd)
    code = main([str(sd), "--arch", "U_Net", "--output", str(tmp_path / "out"), "--input-size", "64", "64",
                 "--samples", f"kvasir:{root}", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    parity = json.loads(captured.out)["parity"]
    assert parity["passed"] and parity["inputs"] == "images:2 of a data set"
    assert (tmp_path / "out" / "model.xml").is_file()
