"""The benchmark scripts' scoring and error handling: what the README's tables are computed with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_2d  # noqa: E402
import bench_encoders  # noqa: E402
import bench_infogan  # noqa: E402
import bench_sequences  # noqa: E402
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


def test_the_encoder_features_scored_are_the_codes_linear_output_and_the_last_hidden_layer():
    """z: BiGAN's NNC_e reads the code head before the squash into (−1, 1), ALI's its μ; h: the body's output."""
    from gancli.data.base import Field
    from gancli.nets.encoder import Encoder
    from gancli.nets.mlp import MLPDiscriminator

    torch.manual_seed(0)
    x = torch.randn(20, 6)
    for kind, bounded in (("deterministic", True), ("gaussian", False)):
        E = Encoder(MLPDiscriminator(Field("points", (6,)), hidden=[8]), 3, kind, bounded=bounded).eval()
        z, h = bench_encoders.features(E, x, batch=7)
        torch.testing.assert_close(h, E.body(x))
        torch.testing.assert_close(z, E.out(E.body(x))[:, :3])
        if bounded:
            torch.testing.assert_close(2 * torch.sigmoid(z) - 1, E(x))


def test_deploy_sets_batch_norm_statistics_to_the_plain_average_over_the_data():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    x = torch.randn(256, 4) * 3 + 1
    bench_encoders.deploy_batch_norm(net, x, batch=64)
    with torch.no_grad():
        h = net[0](x).view(4, 64, 3)
    torch.testing.assert_close(net[1].running_mean, h.mean(1).mean(0))
    torch.testing.assert_close(net[1].running_var, h.var(1).mean(0))  # unbiased per batch, as BatchNorm keeps it
    assert not net.training


CURVE = ["model=aae", "dataset=shapes", "dataset.n=64", "dataset.resolution=16", "trainer.batch_size=16"]
CURVE += ["model.encoder.hidden=[8]", "model.decoder.hidden=[8]", "model.discriminator.hidden=[8]"]
CURVE += ["trainer.ckpt_every=1000", "trainer.sample_every=1000"]


def _curve(overrides, run_dir, epochs, score, table):
    """bench_encoders' curves: points in epochs."""
    benchlib.curve(overrides, run_dir, epochs, score, table, bench_encoders.steps_per_epoch)


class _Rows:
    def __init__(self):
        self.rows = []

    def add(self, *row):
        self.rows.append(row)


def test_a_curve_is_one_ordinary_run_scored_at_each_epoch(tmp_path):
    """Scoring between the points neither draws from nor changes the run: the weights at the end are a straight
    run's; the points fall on whole epochs."""
    seen = []

    def score(trainer, epoch, seconds, memo):
        seen.append((epoch, trainer.step, trainer.algorithm.nets["encoder"].training))
        torch.randn(1000)  # what scoring may draw must not reach the run
        trainer.algorithm.encode(torch.zeros(2, 3, 16, 16))
        return epoch, trainer.step

    table = _Rows()
    _curve(CURVE, tmp_path / "curve", [1, 3], score, table)
    assert seen == [(1, 4, False), (3, 12, False)]  # 64 images / 16 per batch = 4 steps an epoch
    assert table.rows == [("1", "4"), ("3", "12")]
    straight, _ = benchlib.train([*CURVE, "trainer.steps=12"], tmp_path / "straight")
    curved = torch.load(tmp_path / "curve" / "checkpoints" / "last.pt", weights_only=True)
    for k, v in straight.algorithm.nets["encoder"].state_dict().items():
        torch.testing.assert_close(curved["nets"]["encoder"][k], v)


def _weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["nets"]["encoder"]


def test_a_stopped_curve_continues_from_its_run_dir_without_rescoring(tmp_path):
    """The same curve on the same run dir: the points scored are read back, training resumes exactly from the
    checkpoint, and what the score kept (a baseline) is there; a run of other settings is refused by key."""
    scored = []

    def score(trainer, epoch, seconds, memo):
        scored.append(epoch)
        memo.setdefault("first", trainer.step)
        return (
            epoch,
            memo["first"],
            sum(float(p.detach().sum()) for p in trainer.algorithm.nets["encoder"].parameters()),
        )

    first, later, straight = _Rows(), _Rows(), _Rows()
    _curve(CURVE, tmp_path / "stopped", [0], score, first)  # scored before anything is trained
    _curve(CURVE, tmp_path / "stopped", [0, 1], score, _Rows())
    _curve(CURVE, tmp_path / "stopped", [0, 1, 3], score, later)
    assert scored == [0, 1, 3]
    _curve(CURVE, tmp_path / "straight", [0, 1, 3], score, straight)
    assert later.rows == straight.rows and later.rows[0] == first.rows[0]
    assert [row[1] for row in later.rows] == ["0", "0", "0"]  # what the score kept at epoch 0, read back
    for k, v in _weights(tmp_path / "straight").items():
        torch.testing.assert_close(_weights(tmp_path / "stopped")[k], v, rtol=0, atol=0)
    with pytest.raises(GanError, match=r"other settings \(model\.z_dim\)"):
        _curve([*CURVE, "model.z_dim=3"], tmp_path / "stopped", [1, 3], score, _Rows())
    with pytest.raises(GanError, match="past epoch 2"):
        _curve(CURVE, tmp_path / "stopped", [2, 3], score, _Rows())


class _StubClusters:
    """Two clusters; q(y | x) read off each image's first pixel; `gan encode` gives the argmax as a float."""

    clusters = 2

    def encode(self, x):
        p1 = x[:, 0, 0, 0]
        probs = torch.stack([1 - p1, p1], 1)
        return {"y": probs, "cluster": probs.argmax(1).float()}

    def reconstruct(self, x):
        return x


def test_cluster_scores_map_clusters_on_the_training_split_by_both_rules():
    train = {"x": torch.tensor([0.1, 0.2, 0.45, 0.9, 0.6]).view(5, 1, 1, 1), "y": torch.tensor([3, 3, 5, 7, 5])}
    test = {"x": torch.tensor([0.3, 0.8]).view(2, 1, 1, 1), "y": torch.tensor([3, 5])}
    # majority: cluster 0 (0.1, 0.2, 0.45) → 3, cluster 1 (0.9, 0.6) → tie 7 / 5, the smaller label, 5
    # most confident: cluster 0's surest is 0.1 → 3; cluster 1's is 0.9 → 7
    majority, confident, rec, used = bench_encoders.cluster_scores(_StubClusters(), train, test)
    assert (majority, confident, rec, used) == (0.0, 0.5, 0.0, 2.0)


def test_style_spread_is_zero_when_each_column_keeps_its_code_and_near_one_when_codes_ignore_it():
    classes, styles = 10, 6
    kept = torch.randn(styles, 4).repeat(classes, 1)  # row k, column j: style j's code whatever the class
    assert bench_encoders.style_kept(kept, classes, styles) == 0.0
    lost = torch.randn(classes * styles, 4, generator=torch.Generator().manual_seed(0))
    assert 0.8 < bench_encoders.style_kept(lost, classes, styles) < 1.2
    half = kept + 0.5 * lost  # the style dominates: within-style spread is what the noise adds
    assert 0.1 < bench_encoders.style_kept(half, classes, styles) < 0.8


def test_pca_baseline_reads_the_directions_of_largest_variance():
    """Classes apart along a high-variance pixel axis: 1-NN on 2 components is exact; along the 3rd-largest
    axis only, it is no better than chance."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 1, 4, 4, generator=g) * 0.1
    x[:, 0, 0, 0] += 5 * (2 * y - 1)  # the class on the largest axis
    train, test = {"x": x[:100], "y": y[:100]}, {"x": x[100:], "y": y[100:]}
    assert bench_encoders.pca_nn_error(train, test) == 0.0
    x2 = torch.randn(200, 1, 4, 4, generator=g) * 0.1
    x2[:, 0, 0, 0] += 3 * torch.randn(200, generator=g)
    x2[:, 0, 0, 1] += 3 * torch.randn(200, generator=g)
    x2[:, 0, 0, 2] += 0.5 * (2 * y - 1)  # the class on a weaker axis than two noise axes
    train, test = {"x": x2[:100], "y": y[:100]}, {"x": x2[100:], "y": y[100:]}
    assert bench_encoders.pca_nn_error(train, test) > 0.3


def test_a_longer_curve_continues_a_shorter_run_only_at_a_constant_rate(tmp_path):
    """Past the run's trainer.steps the curve goes on from its checkpoint when only the length differs and the
    rate is constant (the steps are then those of a run made that long); a decay reads the length: refused."""

    def score(trainer, epoch, seconds, memo):
        return epoch, trainer.step

    short = [*CURVE, "trainer.steps=4"]
    _curve(short, tmp_path / "extended", [1], score, _Rows())
    extended, straight = _Rows(), _Rows()
    _curve(short, tmp_path / "extended", [1, 3], score, extended)
    _curve([*CURVE, "trainer.steps=12"], tmp_path / "straight", [1, 3], score, straight)
    assert extended.rows == straight.rows == [("1", "4"), ("3", "12")]
    for k, v in _weights(tmp_path / "straight").items():
        torch.testing.assert_close(_weights(tmp_path / "extended")[k], v, rtol=0, atol=0)
    decaying = [*short, "optimizer.lr_schedule=linear_decay"]
    _curve(decaying, tmp_path / "decaying", [1], score, _Rows())
    with pytest.raises(GanError, match=r"other settings \(trainer\.steps\)"):
        _curve(decaying, tmp_path / "decaying", [1, 3], score, _Rows())


def test_a_kept_benchmark_run_that_was_stopped_continues_exactly_and_refuses_other_settings(tmp_path, monkeypatch):
    """benchlib.train(resume=True): a run stopped by a signal is not scored, says how to continue, and the same
    call continues it from its checkpoint to the weights of a run never stopped; its seconds add up."""
    from gancli.training.trainer import Trainer

    ring = ["model=gan", "dataset=ring8", "dataset.n=256", "trainer.batch_size=32", "trainer.steps=6"]
    fit = Trainer.fit
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "fit", lambda self: {**fit(self, stop_after=2), "status": "interrupted"})
        with pytest.raises(GanError, match="stopped at step 2 of 6 .* The same command continues it"):
            benchlib.train(ring, tmp_path / "kept", resume=True)
    first = float((tmp_path / "kept" / "bench_seconds").read_text())
    starts = []
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "fit", lambda self: starts.append(self.step) or fit(self))
        kept, seconds = benchlib.train(ring, tmp_path / "kept", resume=True)
    straight, _ = benchlib.train(ring, tmp_path / "straight")
    assert starts == [2] and kept.step == 6 and seconds >= first
    for k, v in straight.algorithm.nets["G"].state_dict().items():
        torch.testing.assert_close(kept.algorithm.nets["G"].state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(GanError, match=r"other settings \(model\.z_dim\)"):
        benchlib.train([*ring, "model.z_dim=3"], tmp_path / "kept", resume=True)
    (tmp_path / "kept" / "bench_seconds").unlink()  # a process killed outright leaves its checkpoint, no clock
    longer, _ = benchlib.train([*ring[:-1], "trainer.steps=8"], tmp_path / "kept", resume=True)
    assert longer.step == 8 and (tmp_path / "kept" / "bench_seconds").exists()


def test_a_kept_run_saved_before_a_key_existed_continues_when_the_key_is_at_its_default(tmp_path):
    """A key gancli gained after the run was written (here eval.best_after, erased from the checkpoint's
    config) is no other setting at its default value; set to another value it is."""
    from gancli.core.checkpoint import load_checkpoint
    from gancli.core.files import save_atomic

    ring = ["model=gan", "dataset=ring8", "dataset.n=256", "trainer.batch_size=32", "trainer.steps=2"]
    benchlib.train(ring, tmp_path / "kept", resume=True)
    last = tmp_path / "kept" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    del state["config"]["eval"]["best_after"]
    save_atomic(state, last)
    with pytest.raises(GanError, match=r"other settings \(eval\.best_after, trainer\.steps\)"):
        benchlib.train([*ring[:-1], "trainer.steps=4", "eval.best_after=3"], tmp_path / "kept", resume=True)
    longer, _ = benchlib.train([*ring[:-1], "trainer.steps=4"], tmp_path / "kept", resume=True)
    assert longer.step == 4


def test_the_rcgan_benchmark_composes_with_its_default_paths(tmp_path, monkeypatch):
    """`~` in --cache / --root (the defaults) is expanded: Hydra's override grammar rejects it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = benchlib.compose(bench_sequences.mnist_run("~/mnist", 1320, "~/.cache/gancli"))
    assert cfg.eval.cache_dir == str(tmp_path / ".cache" / "gancli") and cfg.dataset.root == str(tmp_path / "mnist")
    assert cfg.eval.best == "tstr_vali_f1" and cfg.eval.every == 1320 and cfg.trainer.steps == 25212


def test_the_rgan_sines_benchmark_keeps_the_authors_checkpoint_choice():
    """Scored every one of their epochs; the checkpoint with the lowest validation MMD² after their epoch 10."""
    cfg = benchlib.compose(bench_sequences.sines_run(59))
    assert cfg.eval.best == "mmd_vali" and cfg.eval.best_after == 649 and cfg.eval.every == 59
    assert cfg.trainer.steps == 5900 and cfg.dataset.n == 8400 and cfg.eval.n == 4984
    logged = [{"step": 59 * e, "mmd_vali": v} for e, v in ((10, 0.001), (11, 0.03), (12, 0.02), (13, 0.02))]
    assert bench_sequences.picked(logged, "mmd_vali", 649)["step"] == 708  # lowest after epoch 10, the first of ties
    assert bench_sequences.picked(logged, "mmd_vali")["step"] == 590
    assert (
        bench_sequences.picked([{"step": 1, "tstr_vali_f1": 0.5}, {"step": 2, "tstr_vali_f1": 0.7}], "tstr_vali_f1")[
            "step"
        ]
        == 2
    )
    with pytest.raises(GanError, match=r"no evaluation after step 649 \(eval.best_after\)"):
        bench_sequences.picked(logged[:1], "mmd_vali", 649)


TOY = ["dataset.networks.generator.hidden=[8]", "dataset.networks.discriminator.hidden=[8]", "trainer.batch_size=16"]


def test_a_2d_curve_scores_the_run_a_straight_run_of_that_length_would_end_with(tmp_path):
    """bench_2d --curve: each point's scores are those of a run trained straight to that step at the same
    constant rate (the toys' schedule), from the same draw of 2,500 points; a kept run continues."""
    table = _Rows()
    first = bench_2d.curve("wgan_gp", "ring8", 0, TOY, [2, 4], tmp_path / "runs", table)
    again = bench_2d.curve("wgan_gp", "ring8", 0, TOY, [2, 4, 6], tmp_path / "runs", _Rows())
    assert [row[3] for row in table.rows] == ["2", "4"] and again[2] == first[2] and again[4] == first[4]
    over = ["model=wgan_gp", "dataset=ring8", "seed=0", "trainer.sample_every=0", *TOY, "trainer.steps=6"]
    straight, _ = benchlib.train(over, tmp_path / "straight")
    assert again[6] == bench_2d.points(straight, 0)
