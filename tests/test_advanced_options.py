"""Rarely used options live in ``Advanced*Parameters``; the old keywords still work for one
release, with a DeprecationWarning that names the new spelling."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pytest

from attnseg.advanced import merge_moved
from attnseg.errors import ModelConfigError


@dataclass
class _Adv:
    batch: int = 1
    dynamic: bool = False


def test_moved_keywords_warn_and_apply():
    with pytest.warns(DeprecationWarning, match=r"f\(batch=\.\.\.\) is deprecated.*advanced=_Adv\(batch=\.\.\.\)"):
        adv = merge_moved("f", _Adv(dynamic=True), _Adv, {"batch": 4})
    assert adv == _Adv(batch=4, dynamic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert merge_moved("f", None, _Adv, {}) == _Adv()
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        merge_moved("f", None, _Adv, {"bogus": 1})


def test_export_takes_the_old_keywords_and_refuses_unknown_ones(tmp_path):
    pytest.importorskip("torch")
    from attnseg.export import AdvancedExportParameters, export

    with pytest.raises(TypeError, match="'bogus'"):
        export(output_dir=tmp_path / "a", bogus=1)
    with pytest.warns(DeprecationWarning, match="advanced=AdvancedExportParameters"), \
            pytest.raises(ModelConfigError, match="batch must be a positive integer, got 0"):
        export(output_dir=tmp_path / "b", batch=0)
    with pytest.raises(ModelConfigError, match="batch must be a positive integer, got 0"):
        export(output_dir=tmp_path / "c", advanced=AdvancedExportParameters(batch=0))
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_quantize_takes_the_old_keywords_and_refuses_unknown_ones(tmp_path):
    from attnseg.errors import InvalidOptionError
    from attnseg.optimize import AdvancedQuantizationParameters, quantize

    with pytest.raises(TypeError, match="'bogus'"):
        quantize(tmp_path / "model.xml", bogus=1)
    with pytest.warns(DeprecationWarning, match="advanced=AdvancedQuantizationParameters"), \
            pytest.raises(InvalidOptionError, match="latency_runs must be >= 0, got -1"):
        quantize(tmp_path / "model.xml", latency_runs=-1)
    with pytest.raises(InvalidOptionError, match="latency_runs must be >= 0, got -1"):
        quantize(tmp_path / "model.xml", advanced=AdvancedQuantizationParameters(latency_runs=-1))
