"""Rarely used options live in ``Advanced*Parameters`` only: the old keywords of export() and
quantize() (accepted with a warning in 0.1) are unknown keywords now."""

from __future__ import annotations

import pytest

from attnseg.errors import ModelConfigError


def test_export_takes_advanced_and_refuses_the_old_keywords(tmp_path):
    pytest.importorskip("torch")
    from attnseg.export import AdvancedExportParameters, export

    for old in ({"batch": 0}, {"bogus": 1}):
        with pytest.raises(TypeError, match=f"'{next(iter(old))}'"):
            export(output_dir=tmp_path / "a", **old)
    with pytest.raises(ModelConfigError, match="batch must be a positive integer, got 0"):
        export(output_dir=tmp_path / "c", advanced=AdvancedExportParameters(batch=0))
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_quantize_takes_advanced_and_refuses_the_old_keywords(tmp_path):
    from attnseg.errors import InvalidOptionError
    from attnseg.optimize import AdvancedQuantizationParameters, quantize

    for old in ({"latency_runs": -1}, {"bogus": 1}):
        with pytest.raises(TypeError, match=f"'{next(iter(old))}'"):
            quantize(tmp_path / "model.xml", **old)
    with pytest.raises(InvalidOptionError, match="latency_runs must be >= 0, got -1"):
        quantize(tmp_path / "model.xml", advanced=AdvancedQuantizationParameters(latency_runs=-1))
