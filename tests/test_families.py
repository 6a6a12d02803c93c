"""Conditional and representation families: cgan, cdcgan, acgan, sngan (+ projection), infogan."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from gancli.algorithms.priors import build_prior
from gancli.commands.sample import sample_from_config
from gancli.core.errors import GanError
from gancli.data import Field
from gancli.losses import class_nll, info_nll, mutual_information_bound
from gancli.nets import build_discriminator
from gancli.training.run import build_trainer, plain_config

# --------------------------------------------------------------------------------------- loss terms


def test_class_nll_is_the_mean_negative_log_probability_of_the_label():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    p0 = math.exp(2) / (math.exp(2) + 1 + math.exp(-1))
    assert math.isclose(class_nll(logits, labels).item(), (-math.log(p0) - math.log(1 / 3)) / 2, rel_tol=1e-6)


def test_info_nll_and_mi_bound_match_their_formulas():
    cat_logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])  # p(c=1) = 3/4 ; uniform
    cat = torch.tensor([1, 0])
    mu = torch.tensor([[0.5, 0.0], [0.0, -1.0]])
    cont = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    ce = (-math.log(0.75) - math.log(0.5)) / 2
    gauss = ((0.5 * 0.25 + 0.0) + (0.0 + 0.5 * 4.0)) / 2 + 2 * 0.5 * math.log(2 * math.pi)  # summed over codes
    assert math.isclose(info_nll(cat_logits, cat, mu, cont).item(), ce + gauss, rel_tol=1e-6)
    assert math.isclose(info_nll(cat_logits, cat, mu, cont, 2.0, 0.5).item(), 2 * ce + 0.5 * gauss, rel_tol=1e-6)
    bound = mutual_information_bound(cat_logits, cat, 2, mu, cont)
    assert math.isclose(bound.item(), math.log(2) + 2 * math.log(2) - (ce + gauss), rel_tol=1e-6)
    # a Q that is certain and right reaches H(c) for the categorical code
    sure = mutual_information_bound(torch.tensor([[-50.0, 50.0]]), torch.tensor([1]), 2, None, None)
    assert math.isclose(sure.item(), math.log(2), abs_tol=1e-6)


# --------------------------------------------------------------------------------------- networks


def test_spectral_norm_brings_every_top_singular_value_to_one():
    torch.manual_seed(0)
    D = build_discriminator(
        {"arch": "dcgan", "width": 16, "norm": "spectral"},
        Field("image", (3, 32, 32)),
        num_classes=5,
        condition="projection",
        heads={"classifier": 5},
    )
    x, y = torch.randn(8, 3, 32, 32), torch.randint(5, (8,))
    for _ in range(30):  # each training-mode forward runs one power iteration
        D(x, y)
    D.eval()
    sigmas = []
    for m in D.modules():
        if torch.nn.utils.parametrize.is_parametrized(m, "weight"):
            w = m.weight.detach()
            sigmas.append(torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item())
    assert len(sigmas) >= 5  # convs, adversarial head, projection embedding, classifier
    assert all(abs(s - 1.0) < 0.02 for s in sigmas), sigmas


def test_projection_logit_is_head_plus_inner_product_with_the_class_embedding():
    torch.manual_seed(0)
    D = build_discriminator(
        {"arch": "mlp", "hidden": [8]}, Field("points", (2,)), num_classes=3, condition="projection"
    )
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 2, 1])
    logits, h = D(x, y)
    assert torch.allclose(logits, D.out(h).flatten() + (D.embed.weight[y] * h).sum(1))


def test_concat_conditioning_feeds_the_label_to_d(compose_cfg, tiny_overrides, tmp_path):
    cfg = plain_config(compose_cfg(["model=cdcgan", *tiny_overrides]))
    alg = build_trainer(cfg, tmp_path).algorithm
    x = torch.randn(4, 3, 16, 16)
    alg.train_mode(False)
    a, _ = alg.D(x, torch.zeros(4, dtype=torch.long))
    b, _ = alg.D(x, torch.ones(4, dtype=torch.long))
    assert not torch.allclose(a, b)
    z = torch.randn(4, alg.z_dim)
    assert not torch.allclose(alg.G(z, torch.zeros(4, dtype=torch.long)), alg.G(z, torch.ones(4, dtype=torch.long)))


# --------------------------------------------------------------------------------------- data and errors


def test_a_conditional_model_on_unlabelled_data_fails_clearly(compose_cfg, tiny_overrides, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((16, 16, 3), i * 10, np.uint8)).save(folder / f"{i}.png")
    cfg = plain_config(
        compose_cfg(
            [
                "model=cdcgan",
                "dataset=image_folder",
                f"dataset.root={folder}",
                *[o for o in tiny_overrides if not o.startswith("dataset.n=")],
            ]
        )
    )
    with pytest.raises(GanError, match="no class labels.*labelled dataset"):
        build_trainer(cfg, tmp_path / "run")


def test_labels_reach_the_algorithm_from_shapes_and_ring8(compose_cfg, tiny_overrides, tmp_path):
    cfg = plain_config(compose_cfg(["model=acgan", *tiny_overrides]))
    assert build_trainer(cfg, tmp_path / "a").algorithm.num_classes == 5
    cfg = plain_config(compose_cfg(["model=cgan", "dataset=ring8", "dataset.n=512", "trainer.batch_size=16"]))
    assert build_trainer(cfg, tmp_path / "b").algorithm.num_classes == 8


# --------------------------------------------------------------------------------------- sampling


def _sample(ckpt, out, **kw):
    cfg = {
        "ckpt": str(ckpt),
        "n": 10,
        "seed": 0,
        "nrow": 4,
        "out": str(out),
        "format": "png",
        "interpolate": False,
        "traverse": None,
        "class": None,
        "batch_size": 3,
        "device": "cpu",
        "ema": True,
        **kw,
    }
    return sample_from_config(OmegaConf.create(cfg))


def _train(model, compose_cfg, tiny_overrides, run_dir):
    cfg = plain_config(compose_cfg([f"model={model}", *tiny_overrides, "trainer.steps=2"]))
    build_trainer(cfg, run_dir).fit()
    return run_dir / "checkpoints" / "last.pt"


@pytest.mark.parametrize("model", ["cdcgan", "acgan"])
def test_class_sampling(model, compose_cfg, tiny_overrides, tmp_path):
    ckpt = _train(model, compose_cfg, tiny_overrides, tmp_path / "run")
    _sample(ckpt, tmp_path / "all.png", **{"class": "all"})
    w, h = Image.open(tmp_path / "all.png").size
    assert (w, h) == (4 * 18 + 2, 5 * 18 + 2)  # nrow=4 columns, one row per shape class (16 px + padding)
    _sample(ckpt, tmp_path / "star.npz", format="npz", **{"class": "star"})
    z = np.load(tmp_path / "star.npz")
    assert z["images"].shape == (10, 16, 16, 3) and (z["labels"] == 4).all()
    _sample(ckpt, tmp_path / "every.npz", format="npz", **{"class": "all"})
    assert np.bincount(np.load(tmp_path / "every.npz")["labels"]).tolist() == [2, 2, 2, 2, 2]
    with pytest.raises(GanError, match="class=hexagon.*circle, square"):
        _sample(ckpt, tmp_path / "x.png", **{"class": "hexagon"})
    with pytest.raises(GanError, match="class=7.*0..4"):
        _sample(ckpt, tmp_path / "x.png", **{"class": 7})


def test_class_sampling_needs_a_conditional_model(compose_cfg, tiny_overrides, tmp_path):
    ckpt = _train("dcgan", compose_cfg, tiny_overrides, tmp_path / "run")
    with pytest.raises(GanError, match="not class-conditional"):
        _sample(ckpt, tmp_path / "x.png", **{"class": 1})
    with pytest.raises(GanError, match="traverse="):
        _sample(ckpt, tmp_path / "x.png", traverse="c2")


def test_infogan_traversal_and_codes_in_bulk_files(compose_cfg, tiny_overrides, tmp_path):
    ckpt = _train("infogan", compose_cfg, tiny_overrides, tmp_path / "run")
    _sample(ckpt, tmp_path / "c2.png", traverse="c2", nrow=7)
    assert Image.open(tmp_path / "c2.png").size == (7 * 18 + 2, 10 * 18 + 2)  # columns: the sweep; rows: Cat(10)
    _sample(ckpt, tmp_path / "c1.png", traverse="c1", nrow=3)
    assert Image.open(tmp_path / "c1.png").size == (10 * 18 + 2, 3 * 18 + 2)  # columns: the 10 categories
    with pytest.raises(GanError, match="c1, c2, c3"):
        _sample(ckpt, tmp_path / "x.png", traverse="c4")
    _sample(ckpt, tmp_path / "s.npz", format="npz", **{"class": 3})
    z = np.load(tmp_path / "s.npz")
    assert (z["categorical"] == 3).all() and z["continuous"].shape == (10, 2)
    assert np.abs(z["continuous"]).max() <= 1.0


def test_infogan_traversal_sweeps_one_code_and_holds_the_rest():
    from gancli.algorithms.infogan import InfoGAN

    alg = InfoGAN.__new__(InfoGAN)
    alg.n_cat, alg.n_cont, alg.z_dim, alg.device = 3, 2, 5, torch.device("cpu")
    alg.prior = build_prior("uniform")
    inputs, nrow = alg.traversal_inputs("c3", 5, torch.Generator().manual_seed(0))
    assert nrow == 5
    cont = inputs["continuous"].view(3, 5, 2)
    assert torch.allclose(cont[:, :, 1], torch.linspace(-2, 2, 5).expand(3, 5)) and (cont[:, :, 0] == 0).all()
    assert inputs["categorical"].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert (inputs["z"] == inputs["z"][0]).all()  # one shared z
    assert inputs["z"].abs().max() <= 1  # drawn from the model's prior


def test_noise_priors_draw_their_distribution_and_walk_inside_it():
    g = torch.Generator().manual_seed(0)
    u, n = build_prior("uniform"), build_prior("normal")
    zu, zn = u.draw((20000, 4), generator=g), n.draw((20000, 4), generator=g)
    assert zu.min() >= -1 and zu.max() <= 1 and abs(zu.var().item() - 1 / 3) < 0.01
    assert abs(zn.var().item() - 1) < 0.03 and zn.abs().max() > 1
    a, b, t = zu[:3, None], zu[3:6, None], torch.linspace(0, 1, 5).view(1, 5, 1)
    path = u.path(a, b, t)  # straight line: the cube is convex
    assert torch.allclose(path[:, 0], a[:, 0]) and torch.allclose(path[:, -1], b[:, 0])
    assert torch.allclose(path[:, 2], (a[:, 0] + b[:, 0]) / 2) and path.abs().max() <= 1
    a, b = zn[:3, None], zn[3:6, None]
    b = b * (a.norm(dim=-1, keepdim=True) / b.norm(dim=-1, keepdim=True))  # equal norms: slerp keeps the norm
    path = n.path(a, b, t)
    assert torch.allclose(path.norm(dim=-1), a.norm(dim=-1).expand(3, 5), rtol=1e-4)
    assert torch.allclose(path[:, -1], b[:, 0], atol=1e-5)


def test_infogan_noise_is_uniform_and_q_has_the_authors_batchnorm(compose_cfg, tiny_overrides, tmp_path):
    """U(−1, 1) noise, as the original launcher's Uniform(62); BatchNorm in Q's hidden layer as the original
    code has it, and none when asked (`model.head_norm=none`)."""
    alg = _algorithm(compose_cfg, [*tiny_overrides, "model=infogan"], tmp_path)
    z = alg.latent(512)["z"]
    assert z.abs().max() <= 1 and abs(z.var().item() - 1 / 3) < 0.02
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in alg.D.heads["q"].modules())
    alg = _algorithm(compose_cfg, [*tiny_overrides, "model=infogan", "model.head_norm=none"], tmp_path / "bn")
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in alg.D.heads["q"].modules())
    dcgan = _algorithm(compose_cfg, [*tiny_overrides, "model=acgan"], tmp_path / "b")
    assert dcgan.latent(512)["z"].abs().max() > 1  # the other presets: N(0, I)


def test_infogan_preset_has_the_papers_fc_1024_layers(compose_cfg):
    """Chen et al.'s MNIST nets: G = FC-1024 → FC-7·7·128 → upconv 64 → upconv 1; D's body = conv 64 →
    conv 128 → FC-1024, which Q shares."""
    cfg = compose_cfg(["model=infogan", "dataset=mnist"])
    assert cfg.model.generator.fc == 1024 and cfg.model.discriminator.fc == 1024
    from gancli.nets import build_generator

    spec = Field("image", (1, 28, 28))
    G = build_generator(OmegaConf.to_container(cfg.model.generator, resolve=True), spec, 74)
    linears = [m for m in G.stem if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(74, 1024), (1024, 128 * 7 * 7)]
    assert G(torch.randn(2, 74)).shape == (2, 1, 28, 28)
    D = build_discriminator(
        OmegaConf.to_container(cfg.model.discriminator, resolve=True), spec, heads={"q": 12}, head_hidden=128
    )
    logits, h = D(torch.randn(2, 1, 28, 28))
    assert logits.shape == (2,) and h.shape == (2, 1024)


def test_dcgan_leak_sets_every_d_slope_and_the_heads_follow_it():
    spec = Field("image", (1, 28, 28))
    D = build_discriminator({"arch": "dcgan", "width": 8, "fc": 16, "leak": 0.01}, spec, heads={"q": 3}, head_hidden=4)
    slopes = {m.negative_slope for m in D.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.01}
    with pytest.raises(GanError, match="model.discriminator.leak=1.5"):
        build_discriminator({"arch": "dcgan", "width": 8, "leak": 1.5}, spec)


def test_unit_range_pair_computes_what_the_0_1_networks_compute():
    """InfoGAN's code works in [0, 1]: G = σ(a), D reads pixels/255. gancli stores 2·σ(a) − 1 and D maps
    it back, so G's pre-activation, D's output and every weight are those of the [0, 1] networks."""
    from gancli.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    spec = Field("image", (1, 28, 28))
    torch.manual_seed(0)
    G = DCGANGenerator(spec, 12, width=8, fc=16, output="sigmoid")
    z = torch.randn(4, 12)
    a = G.net[:-1](G.stem(z))  # the last conv's output
    assert torch.allclose(G(z), 2 * torch.sigmoid(a) - 1)
    unit, signed = DCGANDiscriminator(spec, width=8, input_range="unit"), DCGANDiscriminator(spec, width=8)
    signed.load_state_dict(unit.state_dict())  # same keys: the input map has no weights
    x01 = torch.rand(4, 1, 28, 28)
    unit.eval(), signed.eval()
    assert torch.allclose(unit(x01 * 2 - 1), signed(x01), atol=1e-6)
    with pytest.raises(GanError, match="model.generator.output='relu'.*tanh, sigmoid"):
        DCGANGenerator(spec, 12, width=8, output="relu")
    with pytest.raises(GanError, match="model.discriminator.input_range='bytes'.*signed, unit"):
        DCGANDiscriminator(spec, width=8, input_range="bytes")


def test_infogan_mnist_experiment_is_the_authors_recipe(compose_cfg):
    """openai/InfoGAN's MNIST run: batch 128 × 5000 updates on the 55k images TF keeps, [0, 1] pixels with
    a sigmoid, slope 0.01, BatchNorm in Q, fresh noise for G's update; `dataset=` etc. still override."""
    cfg = compose_cfg(["experiment=infogan_mnist"])
    assert (cfg.model.name, cfg.dataset.name, cfg.recipe) == ("infogan", "mnist", "infogan_mnist")
    assert (cfg.trainer.batch_size, cfg.trainer.steps, list(cfg.dataset.subset)) == (128, 5000, [5000, 60000])
    assert (cfg.model.g_fakes, cfg.model.head_norm, cfg.model.discriminator.leak) == ("fresh", "batch", 0.01)
    assert (cfg.model.generator.output, cfg.model.discriminator.input_range) == ("sigmoid", "unit")
    assert compose_cfg(["experiment=infogan_mnist", "dataset.batch_size=64"]).trainer.batch_size == 64
    assert compose_cfg(["model=infogan", "dataset=mnist"]) == cfg  # the preset on MNIST is that run


def test_infogan_takes_the_authors_nets_everywhere_and_their_data_settings_on_mnist_only(compose_cfg):
    """The nets' details are model=infogan's own; the 55k split, batch 128 and 5,000 updates are MNIST's."""
    cfg = compose_cfg(["model=infogan", "dataset=fashion_mnist"])
    assert (cfg.model.g_fakes, cfg.model.head_norm, cfg.model.discriminator.leak) == ("fresh", "batch", 0.01)
    assert (cfg.model.generator.output, cfg.model.discriminator.input_range) == ("sigmoid", "unit")
    assert cfg.recipe is None and cfg.dataset.get("subset") is None
    assert cfg.trainer.batch_size == compose_cfg(["model=dcgan", "dataset=fashion_mnist"]).trainer.batch_size


def test_dcgan_without_fc_keeps_its_checkpoint_layout():
    """fc=0 (every preset but infogan) builds exactly the earlier modules: old checkpoints still load."""
    from gancli.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    spec = Field("image", (3, 32, 32))
    G, D = DCGANGenerator(spec, 100, width=8), DCGANDiscriminator(spec, width=8)
    assert G.stem is None and D.fc is None
    assert list(G.state_dict())[:2] == ["net.0.weight", "net.1.weight"] and "net.0.weight" in G.state_dict()
    assert G.state_dict()["net.0.weight"].shape == (100, 32, 4, 4)
    assert all(k.startswith("body.") for k in D.state_dict()) and D.feature_dim == 32 * 4 * 4


# --------------------------------------------------------------------------------------- the step


def _algorithm(compose_cfg, overrides, tmp_path):
    return build_trainer(plain_config(compose_cfg(overrides)), tmp_path).algorithm


def test_d_sees_augmented_real_and_fake_and_g_through_the_same_augmentation(compose_cfg, tiny_overrides, tmp_path):
    alg = _algorithm(compose_cfg, [*tiny_overrides, "tricks.diffaugment=[cutout]"], tmp_path)
    seen = []
    real_augment = alg.augment
    alg.augment = lambda x: seen.append(x.requires_grad) or real_augment(x)
    stream = iter(lambda: {"x": torch.rand(16, 3, 16, 16) * 2 - 1, "y": torch.zeros(16, dtype=torch.long)}, None)
    alg.train_step(lambda: next(stream), 0)
    assert seen == [False, False, True]  # D step: real, detached fake; G step: fake with its graph


@pytest.mark.parametrize("mode,n_critic", [("reuse", 1), ("fresh", 1), ("reuse", 2), ("fresh", 2)])
def test_g_step_reuses_the_d_steps_fakes_unless_asked_for_fresh_ones(
    compose_cfg, tiny_overrides, tmp_path, mode, n_critic
):
    """reuse: G is judged on the last D step's fakes, one draw per D step; fresh: one more draw for G,
    and only G's own fakes carry a graph (the original InfoGAN code's step)."""
    alg = _algorithm(
        compose_cfg, [*tiny_overrides, "model=infogan", f"model.g_fakes={mode}", f"model.n_critic={n_critic}"], tmp_path
    )
    draws, judged = [], {}
    real_latent, real_g_step = alg.latent, alg.g_step
    alg.latent = lambda *a, **k: draws.append(real_latent(*a, **k)) or draws[-1]
    alg.g_step = lambda fake, inputs, sigma: judged.update(fake=fake, inputs=inputs) or real_g_step(fake, inputs, sigma)
    stream = iter(lambda: {"x": torch.rand(16, 3, 16, 16) * 2 - 1, "y": torch.zeros(16, dtype=torch.long)}, None)
    logs = alg.train_step(lambda: next(stream), 0)
    assert len(draws) == n_critic + (mode == "fresh")
    assert judged["inputs"] is draws[-1] and judged["fake"].requires_grad
    assert not torch.equal(draws[-1]["z"], draws[0]["z"]) or len(draws) == 1
    assert "G/mi_bound" in logs and "D/mi_bound" in logs


def test_instance_noise_anneals_to_zero(compose_cfg, tiny_overrides, tmp_path):
    alg = _algorithm(compose_cfg, [*tiny_overrides, "tricks.instance_noise=0.2", "trainer.steps=10"], tmp_path)
    assert [round(alg.instance_sigma(s), 6) for s in (0, 5, 10, 12)] == [0.2, 0.1, 0.0, 0.0]


def test_g_step_moves_g_and_leaves_d_and_its_heads_alone(compose_cfg, tiny_overrides, tmp_path):
    alg = _algorithm(compose_cfg, ["model=acgan", *tiny_overrides], tmp_path)
    d_before = {k: v.clone() for k, v in alg.D.state_dict().items()}
    g_before = {k: v.clone() for k, v in alg.G.state_dict().items() if v.is_floating_point()}
    inputs = alg.latent(16, torch.randint(5, (16,)))
    logs = alg.g_step(alg.g_forward(alg.G, inputs), inputs, 0.0)
    assert "G/class_nll" in logs
    assert all(
        torch.equal(v, alg.D.state_dict()[k])
        for k, v in d_before.items()
        if "running" not in k and "num_batches" not in k
    )  # BatchNorm statistics do move
    assert any(not torch.equal(v, alg.G.state_dict()[k]) for k, v in g_before.items())


def test_class_nll_term_alone_reaches_g(compose_cfg, tiny_overrides, tmp_path):
    alg = _algorithm(compose_cfg, ["model=acgan", *tiny_overrides], tmp_path)
    inputs = alg.latent(16, torch.randint(5, (16,)))
    _, h = alg.D(alg.g_forward(alg.G, inputs), None)
    loss, _ = alg.g_aux(h, inputs)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in alg.G.parameters() if p.requires_grad)


@pytest.mark.parametrize("fakes", [True, False])
def test_acgan_d_class_term_uses_fakes_only_when_asked(compose_cfg, tiny_overrides, tmp_path, fakes):
    """d_class_fakes=true: D's class NLL = NLL(real) + NLL(fake) (Odena et al.); false: NLL(real) only."""
    alg = _algorithm(
        compose_cfg, ["model=acgan", *tiny_overrides, f"model.d_class_fakes={str(fakes).lower()}"], tmp_path
    )
    head = alg.D.heads["classifier"]
    labels = torch.randint(5, (16,))
    h_real, h_fake = torch.randn(16, head.in_features), torch.randn(16, head.in_features)
    loss, logs = alg.d_aux(h_real, h_fake.requires_grad_(True), {"labels": labels})
    expected = class_nll(head(h_real), labels) + (class_nll(head(h_fake), labels) if fakes else 0.0)
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-6)
    (g,) = torch.autograd.grad(loss, h_fake, allow_unused=True)
    assert (g is not None and g.abs().sum() > 0) == fakes


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=infogan", "model.condition.generator=onehot"], "infogan learns its codes without labels"),
        (["model=dcgan", "model.condition.generator=onehot"], "D never sees it"),
        (["model=dcgan", "model.condition.discriminator=bogus"], "not one of: none, concat, projection"),
        (["model=cdcgan", "model.condition.generator=hot"], "not one of: none, onehot, embedding"),
        (["model=dcgan", "model.noise=gauss"], r"model.noise.*'gauss'.*normal, uniform"),
        (["model=infogan", "model.head_norm=bn"], "model.head_norm='bn' is not one of: none, batch, layer"),
        (
            ["model=dcgan", "model.g_fakes=new"],
            "model.g_fakes='new' is not allowed: model.g_fakes takes one of: reuse, fresh",
        ),
    ],
)
def test_conditioning_mistakes_are_named(compose_cfg, tiny_overrides, tmp_path, overrides, message):
    with pytest.raises(GanError, match=message):
        _algorithm(compose_cfg, [*tiny_overrides, *overrides], tmp_path)


def test_samples_do_not_depend_on_batch_size_and_class_refuses_grids(compose_cfg, tiny_overrides, tmp_path):
    ckpt = _train("acgan", compose_cfg, tiny_overrides, tmp_path / "run")
    _sample(ckpt, tmp_path / "a.npz", format="npz", batch_size=3, **{"class": "all"})
    _sample(ckpt, tmp_path / "b.npz", format="npz", batch_size=10, **{"class": "all"})
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert (a["images"] == b["images"]).all() and (a["labels"] == b["labels"]).all()
    with pytest.raises(GanError, match="cannot be combined with interpolate"):
        _sample(ckpt, tmp_path / "x.png", interpolate=True, **{"class": 1})


def test_infogan_codes_take_no_class_names(compose_cfg, tiny_overrides, tmp_path):
    ckpt = _train("infogan", compose_cfg, tiny_overrides, tmp_path / "run")
    with pytest.raises(GanError, match="class=star.*0..9"):  # its categories are not the dataset's classes
        _sample(ckpt, tmp_path / "x.png", **{"class": "star"})
