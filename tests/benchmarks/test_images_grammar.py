"""seg-benchmark --images takes the one data grammar: a folder, or a data set KIND:PATH."""

from __future__ import annotations

import json
import shutil


def test_images_as_a_folder_or_a_data_set(binary_ir, shared_data, tmp_path, capsys):
    from attnseg.cli.benchmark import main

    root = tmp_path / "pairs"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for src in sorted((shared_data / "kvasir-seg" / sub).iterdir())[:2]:
            shutil.copy(src, root / sub / src.name)
    counts = []
    for images in (str(root / "images"), f"kvasir:{root}"):
        assert main([str(binary_ir), "-niter", "2", "--images", images, "--inference-precision", "f32",
                     "--json"]) == 0
        e2e = json.loads(capsys.readouterr().out)["end_to_end"]
        counts.append(e2e["num_images"])
    assert counts == [2, 2]
