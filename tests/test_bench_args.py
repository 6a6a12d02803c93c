"""The benchmark scripts' argument repair: overrides swallowed by list options, unknown preset names."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import benchlib  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench")
    ap.add_argument("--models", nargs="+", default=["acgan"])
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("overrides", nargs="*")
    return ap


def test_overrides_after_a_list_option_are_overrides(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench", "--models", "acgan", "cdcgan", "trainer.steps=10"])
    args = benchlib.parse_args(_parser(), {"models": "model"})
    assert args.models == ["acgan", "cdcgan"] and args.overrides == ["trainer.steps=10"]


def test_an_unknown_preset_fails_before_training_and_lists_the_choices(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench", "--models", "acgna"])
    with pytest.raises(SystemExit):
        benchlib.parse_args(_parser(), {"models": "model"})
    err = capsys.readouterr().err
    assert "acgna" in err and "acgan" in err and "wgan_gp" in err


def test_overrides_after_a_seed_list_are_overrides_and_bad_seeds_are_named(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench", "--seeds", "0", "1", "trainer.steps=10"])
    args = benchlib.parse_args(_parser(), {"models": "model", "seeds": int})
    assert args.seeds == [0, 1] and args.overrides == ["trainer.steps=10"]
    monkeypatch.setattr(sys, "argv", ["bench", "--seeds", "0", "one"])
    with pytest.raises(SystemExit):
        benchlib.parse_args(_parser(), {"seeds": int})
    assert "--seeds takes integers" in capsys.readouterr().err
