"""The benchmark scripts' scoring and error handling: what the README's tables are computed with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_infogan  # noqa: E402
import benchlib  # noqa: E402

from gancli.core.errors import GanError  # noqa: E402


class _StubInfoGAN:
    """Q's categorical code = a fixed lookup per image (the image's first pixel holds its index)."""

    n_cat, device = 3, torch.device("cpu")

    def __init__(self, codes):
        self.codes = torch.tensor(codes)

    def predict_codes(self, x):
        return self.codes[x[:, 0, 0, 0].long()], None


def test_score_maps_on_the_train_part_and_measures_both_parts():
    x = torch.arange(8.0).view(8, 1, 1, 1)
    # train: categories 0,0,0,1,1,2 for digits 5,5,6,2,2,1 → map 0→5, 1→2, 2→1; 5 of 6 right
    algo = _StubInfoGAN([0, 0, 0, 1, 1, 2, 0, 2])
    train = (x[:6], torch.tensor([5, 5, 6, 2, 2, 1]))
    held = (x[6:], torch.tensor([5, 2]))  # held-out: 0→5 right, 2→1 wrong
    held_acc, train_acc, digits = bench_infogan.score(algo, train, held)
    assert (held_acc, digits) == (0.5, 3) and train_acc == pytest.approx(5 / 6)
    assert bench_infogan.cells(held_acc, train_acc, digits) == ["50.0 %", "83.3 %", "3/10"]


def test_a_seed_sweep_is_summarised_by_its_median_and_range():
    assert bench_infogan.spread([0.882, 0.758, 0.874, 0.867, 0.842]) == "86.7 % (75.8–88.2)"


def test_a_users_error_ends_a_bench_script_with_its_message_and_a_bug_keeps_its_traceback(capsys):
    def bad_input():
        raise GanError("checkpoint x.pt does not exist.")

    with pytest.raises(SystemExit) as stop:
        benchlib.run(bad_input)
    assert stop.value.code == 2 and "checkpoint x.pt does not exist." in capsys.readouterr().err

    def bug():
        raise ZeroDivisionError("oops")

    with pytest.raises(ZeroDivisionError):
        benchlib.run(bug)


def test_a_mistyped_override_fails_with_the_key_and_its_neighbours():
    with pytest.raises(GanError, match=r"unknown config key 'trainer.stepz'.*Did you mean 'trainer.steps'"):
        benchlib.compose(["trainer.stepz=3"])


def test_compose_gives_the_spec_gan_train_would_and_refuses_a_sweep():
    cfg = benchlib.compose(["model=acgan", "dataset=shapes", "trainer.steps=7"])
    assert (cfg.model.name, cfg.dataset.name, cfg.trainer.steps) == ("acgan", "shapes", 7)
    with pytest.raises(GanError, match="sweeps"):
        benchlib.compose(["model=acgan,cdcgan"])


def test_a_table_prints_its_header_with_its_first_row_and_writes_all_of_it(capsys, tmp_path):
    table = benchlib.Table("seed", "accuracy")
    assert capsys.readouterr().out == ""  # a run that fails before a result prints only its error
    table.add(0, "88.2 %")
    assert capsys.readouterr().out.splitlines() == ["| seed | accuracy |", "|---|---|", "| 0 | 88.2 % |"]
    table.add(1, "87.4 %")
    assert capsys.readouterr().out.splitlines() == ["| 1 | 87.4 % |"]
    table.write(str(tmp_path / "t.md"))
    assert (tmp_path / "t.md").read_text().splitlines()[2:] == ["| 0 | 88.2 % |", "| 1 | 87.4 % |"]


def test_a_run_stopped_by_a_signal_is_not_scored(tmp_path, monkeypatch):
    """SIGTERM ends training gracefully; the benchmark must not then score the short run as complete."""
    from gancli.training.trainer import Trainer

    fit = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self: {**fit(self, stop_after=2), "status": "interrupted"})
    with pytest.raises(
        GanError, match="stopped at step 2 of 6 .interrupted.; a benchmark scores only runs that finished"
    ):
        benchlib.train(
            ["model=gan", "dataset=ring8", "dataset.n=256", "trainer.batch_size=32", "trainer.steps=6"], tmp_path
        )
