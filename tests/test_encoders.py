"""GANs with an encoder (AAE and its uses, ALI, BiGAN): who receives which gradients, the priors' moments,
the reparameterisation, the cluster-head cost and the latent metrics against their formulas, training with
exact resume on shapes at 16 and 28 px, `gan encode`, `reconstruct=`, and the bad-input messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_same_state, compose_train, straight_and_resumed
from omegaconf import OmegaConf

from gancli.algorithms import build_algorithm
from gancli.algorithms.aae_categorical import head_distance_cost
from gancli.algorithms.priors import build_prior
from gancli.commands.encode import encode_from_config
from gancli.commands.sample import sample_from_config
from gancli.core.errors import GanError
from gancli.core.precision import Precision
from gancli.data.base import DataSpec, Field
from gancli.metrics.latent import cluster_error, confident_labels, majority_labels, nearest_neighbour_accuracy
from gancli.nets.encoder import Encoder, JointCritic
from gancli.nets.mlp import MLPDiscriminator, MLPGenerator
from gancli.training.run import build_trainer, plain_config

MLP = ["model.encoder.hidden=[16]", "model.decoder.hidden=[16]", "model.discriminator.hidden=[16]"]
TINY = [
    "dataset.n=64",
    "dataset.resolution=16",
    "trainer.batch_size=8",
    "trainer.steps=4",
    "trainer.log_every=1",
    "trainer.sample_every=2",
    "trainer.ckpt_every=100",
    "logger=none",
    "trainer.progress=false",
    "trainer.sample_n=8",
]
PRESETS = {
    "aae": MLP,
    "aae_supervised": MLP,
    "aae_semi": [*MLP, "model.clusters=5", "model.labelled=20"],
    "aae_cluster": [*MLP, "model.d_input_noise=0.3"],
    "aae_dimred": MLP,
    "bigan": [
        "model.encoder.hidden=[16]",
        "model.generator.hidden=[16]",
        "model.discriminator.hidden=[16]",
        "model.discriminator.joint_hidden=[16]",
    ],
    "bigan_conv": [
        "model.encoder.width=4",
        "model.generator.width=4",
        "model.discriminator.width=4",
        "model.discriminator.joint_hidden=[8]",
    ],
    "ali": [
        "model.encoder.width=4",
        "model.generator.width=4",
        "model.discriminator.width=4",
        "model.discriminator.z_hidden=[8]",
        "model.discriminator.joint_hidden=[8]",
    ],
}
OPTIONS = {
    "aae_prior_labels": (
        "aae",
        [*MLP, "model.z_dim=2", "model.prior=mixture", "model.prior_labels=true", "model.labelled=10"],
    ),
    "aae_swiss_roll": ("aae", [*MLP, "model.z_dim=2", "model.prior=swiss_roll", "model.prior_labels=true"]),
    "aae_gaussian_encoder": ("aae", [*MLP, "model.encoder.kind=gaussian", "model.prior=uniform"]),
}


def trainer_for(model, extra, tmp_path, *more):
    cfg = plain_config(compose_train([f"model={model}", *TINY, *extra, *more]))
    return build_trainer(cfg, tmp_path / "run")


def _listed(opts) -> list:
    return list(opts) if isinstance(opts, (list, tuple)) else [opts]


class GradientRecorder:
    """Stands in for Precision.step and Precision.steps: per update, clears every network's gradients,
    backpropagates (onto the update's own optimizers' parameters alone when several updates share one pass,
    as Precision.steps does), and records which networks received any and which optimizers (by name) the
    update steps; the steps come after every update's gradients, as in Precision.steps."""

    def __init__(self, algo):
        self.algo, self.seen, self.stepped = algo, {}, {}

    def __call__(self, name, loss, optimizer):
        self.steps([(name, loss, optimizer)])

    def steps(self, updates):
        stash = []
        for name, loss, opts in updates:
            opts = _listed(opts)
            for m in self.algo.nets.values():
                m.zero_grad(set_to_none=True)
            params = [p for o in opts for g in o.param_groups for p in g["params"]]
            if len(updates) == 1:
                loss.backward()
            else:
                loss.backward(inputs=params, retain_graph=True)
            self.seen[name] = {
                k
                for k, m in self.algo.nets.items()
                if any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
            }
            self.stepped[name] = {k for k, o in self.algo.optimizers.items() if any(o is x for x in opts)}
            stash.append((opts, [(p, p.grad) for p in params]))
        for opts, grads in stash:
            for p, g in grads:
                p.grad = g
            for o in opts:
                o.step()


def record_step(trainer) -> GradientRecorder:
    algo = trainer.algorithm
    recorder = GradientRecorder(algo)
    algo.precision.step, algo.precision.steps = recorder, recorder.steps
    algo.train_step(lambda: next(trainer.stream), 0)
    return recorder


PER_PHASE = "model.optimizers=per_phase"
NONZERO_HEAD = "model.discriminator.zero_head=false"


def test_in_aae_only_the_encoder_receives_the_generator_gradients(tmp_path):
    for layout in ([], [PER_PHASE]):
        seen = record_step(trainer_for("aae", MLP, tmp_path, *layout)).seen
        assert seen["autoencoder"] == {"encoder", "decoder"}  # reconstruction phase
        assert seen["D"] == {"D"}  # D on z: codes detached
        assert seen["encoder"] == {"encoder"}  # the encoder plays G; D and decoder untouched


def test_the_categorical_aae_runs_every_phase_with_the_right_networks(tmp_path):
    seen = record_step(trainer_for("aae_semi", PRESETS["aae_semi"], tmp_path)).seen
    assert seen["autoencoder"] == {"encoder", "decoder"}
    assert seen["D"] == {"D_y", "D_z"}
    assert seen["encoder"] == {"encoder"}
    assert seen["classifier"] == {"encoder"}  # the semi-supervised phase


def test_the_aae_presets_keep_one_optimizer_per_network_the_encoders_shared_by_its_phases(tmp_path):
    """The reproduction's layout: the encoder's one Adam steps in reconstruction, as G and in classification;
    per_phase keeps gancli's earlier one optimizer per phase."""
    rec = record_step(trainer_for("aae_semi", PRESETS["aae_semi"], tmp_path))
    assert set(rec.algo.optimizers) == {"encoder", "decoder", "D_y", "D_z"}
    assert rec.stepped == {
        "autoencoder": {"encoder", "decoder"},
        "D": {"D_y", "D_z"},
        "encoder": {"encoder"},
        "classifier": {"encoder"},
    }
    rec = record_step(trainer_for("aae_semi", PRESETS["aae_semi"], tmp_path, PER_PHASE))
    assert rec.stepped == {k: {k} for k in ("autoencoder", "D", "encoder", "classifier")}
    assert set(record_step(trainer_for("aae", MLP, tmp_path)).algo.optimizers) == {"encoder", "decoder", "D"}


@pytest.mark.parametrize(
    "model, extra",
    [
        ("aae", MLP),
        ("aae", [*MLP, PER_PHASE]),
        ("aae_semi", PRESETS["aae_semi"]),
        ("aae_semi", [*PRESETS["aae_semi"], PER_PHASE]),
        ("bigan", [*PRESETS["bigan"], NONZERO_HEAD]),
        ("dcgan", []),
    ],
)
def test_clip_norm_bounds_every_optimizer_step_of_every_phase(tmp_path, model, extra):
    """optimizer.clip_norm is an optimizer's: each step of each phase sees its gradients' global norm at most
    the bound (the AAE presets' 5; here 1e-3, far below the raw norms), whatever family steps it."""
    trainer = trainer_for(model, extra, tmp_path, "optimizer.clip_norm=0.001")
    algo, norms = trainer.algorithm, {}
    for name, opt in algo.optimizers.items():
        assert opt.clip_norm == 0.001

        def watch(*a, _opt=opt, _name=name, _step=opt.step, **k):
            grads = [p.grad for g in _opt.param_groups for p in g["params"] if p.grad is not None]
            norms.setdefault(_name, []).append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
            return _step(*a, **k)

        opt.step = watch
    algo.train_step(lambda: next(trainer.stream), 0)
    assert set(norms) == set(algo.optimizers)  # every optimizer stepped
    assert all(n <= 0.001 * (1 + 1e-4) for ns in norms.values() for n in ns), norms
    shared = model.startswith("aae") and "decoder" in algo.optimizers  # one encoder optimizer for its phases
    for name, ns in norms.items():  # ... which clips in each of them: reconstruction, G, classification
        assert len(ns) == ((3 if model == "aae_semi" else 2) if shared and name == "encoder" else 1), (name, ns)


def test_clip_norm_rescales_only_gradients_above_it():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    sgd = torch.optim.SGD(lin.parameters(), lr=1.0)
    sgd.clip_norm = 1.0
    x = torch.randn(5, 3)
    for scale, clipped in ((100.0, True), (1e-3, False)):
        before = [p.detach().clone() for p in lin.parameters()]
        loss = scale * lin(x).pow(2).sum()
        grads = torch.autograd.grad(loss, list(lin.parameters()))
        norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        Precision(None, torch.device("cpu")).step("G", scale * lin(x).pow(2).sum(), sgd)
        expected = [b - g * (1.0 / norm if clipped else 1.0) for b, g in zip(before, grads)]
        for p, e in zip(lin.parameters(), expected):
            torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)


def test_simultaneous_steps_take_every_gradient_at_the_same_parameters():
    """Precision.steps: each loss moves only its own optimizer's parameters, and the second update's gradient
    is the one at the parameters before the first update stepped (one forward pass, both authors' codes)."""
    torch.manual_seed(0)
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    opt_a, opt_b = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    x = torch.randn(4, 2)
    out = b(a(x)).sum()
    loss_b, loss_a = out.pow(2), -out  # b minimises one, a another; both reach both networks
    ga = torch.autograd.grad(loss_a, list(a.parameters()), retain_graph=True)
    gb = torch.autograd.grad(loss_b, list(b.parameters()), retain_graph=True)
    before = [p.detach().clone() for p in (*a.parameters(), *b.parameters())]
    Precision(None, torch.device("cpu")).steps([("D", loss_b, opt_b), ("G", loss_a, opt_a)])
    expected = [p - 0.1 * g for p, g in zip(before, (*ga, *gb))]
    for p, e in zip((*a.parameters(), *b.parameters()), expected):
        torch.testing.assert_close(p.detach(), e)


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_in_bigan_d_sees_both_pairs_and_e_and_g_share_the_adversarial_update(tmp_path, update):
    # D's logit layer starts at zero in the preset, so nothing below it has a gradient at the first step
    trainer = trainer_for("bigan", PRESETS["bigan"], tmp_path, f"model.update={update}", NONZERO_HEAD)
    algo = trainer.algorithm
    g_params = {id(p) for group in algo.optimizers["G"].param_groups for p in group["params"]}
    assert g_params == {id(p) for k in ("encoder", "decoder") for p in algo.nets[k].parameters()}
    rec = record_step(trainer)
    assert rec.seen == {"D": {"D"}, "G": {"encoder", "decoder"}}
    assert rec.stepped == {"D": {"D"}, "G": {"G"}}


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_bigans_generator_step_minimises_the_pairs_loss_with_the_roles_swapped(tmp_path, update):
    """Alternating: G/E's loss is read through D after D's step; simultaneous (the preset): through the D
    that D's own loss was read through, on the same pass."""
    trainer = trainer_for("bigan", PRESETS["bigan"], tmp_path, f"model.update={update}", NONZERO_HEAD)
    algo = trainer.algorithm
    x = next(trainer.stream)["x"]
    z = algo.prior.draw((len(x), algo.z_dim), algo.device)
    algo.prior.draw = lambda *a, **k: z  # the step's noise, known here
    losses = {}

    def expected(n):
        enc, gen = algo.pairs_logits(n["D"], x, n["encoder"](x), n["decoder"](z), z)
        return algo.loss.d_loss(gen, enc).detach(), algo.loss.d_loss(enc, gen).detach()

    def record(name, loss, optimizer):
        if name == "G":  # alternating: D already stepped; E and G not yet
            losses["expected"], losses["flipped"] = expected(algo.nets)
            losses["got"] = loss.detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def record_both(updates):
        losses["expected"], losses["flipped"] = expected(algo.nets)  # nothing has stepped yet
        losses["got"] = dict((name, loss.detach()) for name, loss, _ in updates)["G"]
        GradientRecorder(algo).steps(updates)

    algo.precision.step, algo.precision.steps = record, record_both
    algo.train_step(lambda: {"x": x}, 0)
    assert torch.allclose(losses["got"], losses["expected"], atol=1e-5)
    assert not torch.allclose(losses["got"], losses["flipped"])  # the roles matter


def test_bigans_d_judges_the_pairs_as_two_batches_or_as_one(tmp_path):
    """d_batch=halves (BiGAN's code) runs D once per kind of pair; joint (ALI's code) once on both, split
    after. With BatchNorm in D the two are different functions, so the choice is a real one."""
    trainer = trainer_for("bigan", PRESETS["bigan"], tmp_path, NONZERO_HEAD)
    algo = trainer.algorithm
    D = algo.nets["D"]
    x = next(trainer.stream)["x"]
    z = algo.prior.draw((len(x), algo.z_dim), algo.device)
    ex, gz = algo.nets["encoder"](x).detach(), algo.nets["decoder"](z).detach()
    calls = []
    hook = D.register_forward_hook(lambda m, inp, out: calls.append(len(inp[0])))
    halves = algo.pairs_logits(D, x, ex, gz, z)
    algo.d_joint = True
    joint = algo.pairs_logits(D, x, ex, gz, z)
    hook.remove()
    assert calls == [len(x), len(x), 2 * len(x)]
    both = D(torch.cat([x, gz]), torch.cat([ex, z]))
    torch.testing.assert_close(torch.cat(joint), both)
    assert not torch.allclose(torch.cat(halves), both, atol=1e-3)  # BatchNorm sees another batch


def test_the_semi_supervised_reconstruction_also_rebuilds_the_labelled_batch_from_its_true_class(tmp_path):
    """model.reconstruct_labelled (aae_semi's preset, the reproduction's): the reconstruction phase's loss is the
    stream batch's error plus the labelled batch's, decoded from the true one-hot y and its own z."""
    import torch.nn.functional as F

    from gancli.algorithms.aae import reconstruction_loss

    got = {}
    for flag in ("true", "false"):
        trainer = trainer_for("aae_semi", PRESETS["aae_semi"], tmp_path, f"model.reconstruct_labelled={flag}")
        algo = trainer.algorithm
        x = next(trainer.stream)["x"]
        xl, yl = algo.subset().batch(len(x), 0)
        n = algo.nets
        with torch.no_grad():  # what the phase should compute, before anything steps
            out = n["encoder"].encode(x)
            plain = reconstruction_loss(n["decoder"](torch.cat([F.softmax(out["y"], 1), out["z"]], 1)), x)
            zl = n["encoder"].encode(xl)["z"]
            labelled = reconstruction_loss(n["decoder"](torch.cat([F.one_hot(yl, algo.clusters).float(), zl], 1)), xl)
        recorder = GradientRecorder(algo)

        def record(name, loss, optimizer, _rec=recorder, _flag=flag):
            if name == "autoencoder":
                got[_flag] = loss.detach()
            _rec(name, loss, optimizer)

        algo.precision.step = record
        algo.train_step(lambda _x=x: {"x": _x}, 0)
        expected = plain + labelled if flag == "true" else plain
        torch.testing.assert_close(got[flag], expected, rtol=1e-5, atol=1e-6)


def test_mlp_keys_of_the_authors_nets():
    """affine=false: no bias anywhere, BatchNorm without scale and shift; init=normal: N(0, init_std) weights;
    output=sigmoid with input_range=unit: a [0, 1] pair in gancli's [-1, 1] units; z_skip: z also enters the
    second hidden layer through a bias-free linear map of its own, before that layer's BatchNorm."""
    torch.manual_seed(0)
    img = Field("image", (1, 8, 8))
    G = MLPGenerator(
        img, 6, [32, 32], norm="batch", affine=False, init="normal", init_std=0.02, output="sigmoid", z_skip=True
    )
    D = MLPDiscriminator(img, [32, 32], norm="batch", affine=False, init="normal", init_std=0.5, input_range="unit")
    for net in (G, D):
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        assert linears and all(m.bias is None for m in linears) and norms and not any(m.affine for m in norms)
    big = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, torch.nn.Linear)])
    small = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.Linear)])
    assert abs(big.std().item() - 0.5) < 0.02 and abs(small.std().item() - 0.02) < 0.002
    # G by hand: Linear → BN → ReLU, Linear + skip(z) → BN → ReLU, Linear → 2·σ − 1
    z = torch.randn(16, 6)
    lin = [m for m in G.net if isinstance(m, torch.nn.Linear)]
    bn = [m for m in G.net if isinstance(m, torch.nn.BatchNorm1d)]
    h = torch.relu(bn[0](lin[0](z)))
    h = torch.relu(bn[1](lin[1](h) + G.skips[0](z)))
    torch.testing.assert_close(G(z), (2 * torch.sigmoid(lin[2](h)) - 1).view(16, 1, 8, 8))
    # D reads (x + 1) / 2: the same as a body without the key on [0, 1] data
    plain = MLPDiscriminator(img, [32, 32], norm="batch", affine=False)
    plain.load_state_dict(D.state_dict())
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(D(x), plain((x + 1) / 2))
    with pytest.raises(GanError, match="output 'relu'"):
        MLPGenerator(img, 6, [8], output="relu")


def test_d_of_x_and_z_follows_its_bodys_keys_and_can_start_at_zero():
    torch.manual_seed(0)
    body = {"arch": "mlp", "hidden": [16], "affine": False, "init": "normal", "init_std": 0.02}
    D = JointCritic(
        Field("image", (1, 8, 8)), 4, body, z_hidden=[], joint_hidden=[16], joint_norm="batch", zero_head=True
    )
    linears = [m for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert all(m.bias is None for m in linears) and not D.out.weight.any()
    assert all(abs(m.weight.std().item() - 0.02) < 0.005 for m in linears if m is not D.out)
    assert not any(m.affine for m in D.modules() if isinstance(m, torch.nn.BatchNorm1d))


def test_encoder_families_refuse_penalties_and_tricks_they_would_not_apply(tmp_path):
    with pytest.raises(GanError, match=r"plain adversarial loss.*loss.gp_weight=10.0"):
        trainer_for("aae", MLP, tmp_path, "loss=wgan_gp")
    with pytest.raises(GanError, match=r"tricks.label_smoothing=0.1"):
        trainer_for("bigan", PRESETS["bigan"], tmp_path, "tricks.label_smoothing=0.1")
    trainer_for("aae", MLP, tmp_path, "loss=lsgan")  # a plain loss with its own keys is fine


def test_aae_semi_takes_one_value_of_y_per_class_of_the_dataset_and_clusters_stay_as_set(tmp_path):
    """model.clusters=null (aae_semi's default): the dataset's class count, 5 on shapes and the paper's 10 on MNIST;
    aae_cluster's 16 are clusters, not classes, and stay 16; null on data without labels is refused by name."""
    assert trainer_for("aae_semi", [*MLP, "model.labelled=20"], tmp_path / "a").algorithm.clusters == 5
    assert trainer_for("aae_cluster", MLP, tmp_path / "b").algorithm.clusters == 16
    assert (
        trainer_for("aae_semi", [*MLP, "model.labelled=0", "model.clusters=7"], tmp_path / "c").algorithm.clusters == 7
    )
    cfg = OmegaConf.create(plain_config(compose_train(["model=aae_semi", "dataset=mnist", *MLP])))
    assert cfg.model.clusters is None
    cpu = torch.device("cpu")
    mnist = DataSpec({"x": Field("image", (1, 28, 28)), "y": Field("label", (), 10)})  # its spec: no download
    assert build_algorithm(cfg, mnist, cpu, Precision(None, cpu)).clusters == 10
    cfg.model.labelled = 0
    with pytest.raises(GanError, match="model.clusters=null .* no class labels; set model.clusters"):
        build_algorithm(cfg, DataSpec({"x": Field("image", (1, 28, 28))}), cpu, Precision(None, cpu))
    from gancli.algorithms.aae_categorical import CategoricalAAE
    from gancli.core.rules import check, rules

    family_rules = rules(CategoricalAAE.all_config_rules())
    check({"model": {"clusters": None}}, family_rules)  # the rules accept null ...
    with pytest.raises(GanError, match="model.clusters=1 is not allowed"):
        check({"model": {"clusters": 1}}, family_rules)  # ... and still refuse 1


def test_labelled_counts_are_checked_where_they_apply(tmp_path):
    with pytest.raises(GanError, match="only model.prior_labels=true uses"):
        trainer_for("aae", MLP, tmp_path, "model.labelled=10")
    with pytest.raises(GanError, match="at least one label"):
        trainer_for(
            "aae", MLP, tmp_path, "model.z_dim=2", "model.prior=mixture", "model.prior_labels=true", "model.labelled=0"
        )


@pytest.mark.parametrize("name, mean, var", [("normal", 0.0, 1.0), ("uniform", 0.0, 1 / 3)])
def test_each_prior_has_its_moments(name, mean, var):
    z = build_prior(name).draw((200_000, 3), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), torch.full((3,), mean), atol=0.01)
    assert torch.allclose(z.var(0), torch.full((3,), var), atol=0.01)


def test_the_mixture_prior_puts_label_k_on_its_own_gaussian():
    prior = build_prior("mixture")
    for k in (0, 3, 7):
        z = prior.draw((50_000, 2), generator=torch.Generator().manual_seed(k), labels=torch.full((50_000,), k))
        angle = 2 * math.pi * k / 10
        assert torch.allclose(z.mean(0), torch.tensor([1.4 * math.cos(angle), 1.4 * math.sin(angle)]), atol=0.01)
        along = torch.tensor([math.cos(angle), math.sin(angle)])
        across = torch.tensor([-math.sin(angle), math.cos(angle)])
        assert abs((z @ along).std().item() - 0.5) < 0.01 and abs((z @ across).std().item() - 0.05) < 0.002
    free = prior.draw((20_000, 2), generator=torch.Generator().manual_seed(1), labels=torch.full((20_000,), -1))
    assert free.norm(dim=1).mean() > 1.0 and free.mean(0).norm() < 0.05  # −1: any part, spread round the circle


def test_the_swiss_roll_prior_gives_label_k_its_segment_of_the_roll():
    prior = build_prior("swiss_roll")
    for k in (0, 4, 9):
        z = prior.draw((10_000, 2), generator=torch.Generator().manual_seed(k), labels=torch.full((10_000,), k))
        r = z.norm(dim=1)
        assert r.min() >= 3 * math.sqrt(k / 10) - 1e-5 and r.max() <= 3 * math.sqrt((k + 1) / 10) + 1e-5
        assert torch.allclose(
            torch.atan2(z[:, 1], z[:, 0]) % (2 * math.pi), (4 * math.pi * r / 3) % (2 * math.pi), atol=1e-3
        )


def test_two_d_priors_refuse_a_latent_of_another_size(tmp_path):
    with pytest.raises(GanError, match=r"model.prior=mixture.*2-D.*8 dimensions.*model.z_dim=2"):
        trainer_for("aae", MLP, tmp_path, "model.prior=mixture")
    with pytest.raises(GanError, match="prior_labels=true.*has no parts"):
        trainer_for("aae", MLP, tmp_path, "model.prior_labels=true")


@pytest.mark.parametrize("scale", ["log_var", "log_sigma"])
def test_the_gaussian_encoder_reparameterises_so_gradients_reach_its_mean_and_scale(scale):
    """The head's second half o is log σ² (σ = exp(o / 2)) or, as ALI's code reads it, log σ (σ = exp(o))."""
    torch.manual_seed(0)
    E = Encoder(MLPDiscriminator(Field("points", (4,)), hidden=[8]), 3, "gaussian", scale=scale)
    with torch.no_grad():
        E.out.bias[3:] = 1.0  # o ≈ 1: σ = e or √e, far enough apart to tell
    x = torch.randn(256, 4)
    out = E.encode(x)
    assert set(out) == {"z", "h", "mean", "logvar"} and torch.equal(out["h"], E.body(x))
    o = E.out(E.body(x))[:, 3:].detach()
    sigma = torch.exp(o) if scale == "log_sigma" else torch.exp(o / 2)
    torch.testing.assert_close(out["logvar"].detach(), 2 * torch.log(sigma))
    assert not torch.equal(E(x), E(x)) and torch.equal(E(x, sample=False), out["mean"])
    eps = (out["z"] - out["mean"]).detach() / sigma
    assert abs(eps.std().item() - 1) < 0.1  # z = μ + σ·ε
    out["z"].pow(2).sum().backward()
    grad = E.out.weight.grad
    assert grad[:3].abs().sum() > 0 and grad[3:].abs().sum() > 0  # μ rows and log-scale rows
    with pytest.raises(GanError, match="model.encoder.scale"):
        Encoder(MLPDiscriminator(Field("points", (4,)), hidden=[8]), 3, "gaussian", scale="sigma")


def test_the_bounded_encoder_stays_in_the_uniform_priors_cube():
    E = Encoder(MLPDiscriminator(Field("points", (4,)), hidden=[8]), 3, bounded=True)
    x = 100 * torch.randn(64, 4)
    z = E(x)
    assert z.abs().max() <= 1 and torch.allclose(z, 2 * torch.sigmoid(E.out(E.body(x))) - 1)
    with pytest.raises(GanError, match="bounded"):
        Encoder(MLPDiscriminator(Field("points", (4,)), hidden=[8]), 3, "gaussian", bounded=True)


def test_the_head_distance_cost_is_the_sum_of_shortfalls_below_eta():
    heads = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    # pairs: d = 1, 3, √10; with η = 2 only the first falls short, by 1
    assert head_distance_cost(heads, 2.0).item() == pytest.approx(1.0)
    assert head_distance_cost(heads, 0.5).item() == 0.0
    head_distance_cost(heads, 2.0).backward()
    assert torch.allclose(heads.grad[:2], torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))  # pushes the close pair apart


def test_latent_metrics_follow_their_definitions():
    train_z, train_y = torch.tensor([[0.0], [1.0], [10.0]]), torch.tensor([0, 0, 1])
    test_z, test_y = torch.tensor([[0.4], [9.0], [6.0], [4.0]]), torch.tensor([0, 1, 0, 1])
    assert nearest_neighbour_accuracy(train_z, train_y, test_z, test_y, chunk=1) == 0.5  # 6 → 10 (1), 4 → 1 (0)
    clusters, labels = torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([4, 4, 2, 2, 2, 1])
    assert majority_labels(clusters, labels, 4).tolist() == [4, 2, 1, -1]
    assert cluster_error(clusters, labels, torch.tensor([0, 1, 3]), torch.tensor([4, 1, 0]), 4) == pytest.approx(2 / 3)
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])  # cluster 0's surest: 0; 1's: 2
    assert confident_labels(probs, torch.tensor([7, 3, 5, 3])).tolist() == [7, 5]


@pytest.mark.slow
@pytest.mark.parametrize("name", [*PRESETS, *OPTIONS])
@pytest.mark.parametrize("resolution", [16, 28])
def test_each_preset_and_option_trains_resumes_exactly_and_samples(name, resolution, tmp_path):
    model, extra = OPTIONS.get(name, (name, PRESETS.get(name)))
    cfg = plain_config(
        compose_train([f"model={model}", *TINY, *extra, f"dataset.resolution={resolution}", "trainer.steps=5"])
    )
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop=2)
    for key in ("nets", "optimizers", "algorithm"):
        assert_same_state(straight.state_dict()[key], resumed.state_dict()[key], key)
    run = tmp_path / "straight"
    assert (run / "final.png").exists()
    if "model.z_dim=2" in extra:  # a 2-D code: the scatter and the decoded manifold join the grid
        assert {"latent"} <= set(
            straight.algorithm.panels(straight.reference, straight.algorithm.nets, torch.Generator().manual_seed(0), 4)
        )
    sample = {"ckpt": str(run), "n": 8, "seed": 0, "nrow": 4, "batch_size": 4, "device": "cpu", "ema": True}
    for extra_opts, out in (({}, "plain.png"), ({"reconstruct": "test"}, "rec.png"), ({}, "bulk.npz")):
        fmt = "npz" if out.endswith("npz") else "png"
        sample_from_config(OmegaConf.create({**sample, **extra_opts, "format": fmt, "out": str(tmp_path / out)}))
        assert (tmp_path / out).exists()
    encoded = encode(run, tmp_path / "z.npz", split="test", n=12)
    assert encoded["z"].shape[0] == 12 and encoded["labels"].shape == (12,)
    from gancli.data.base import split_reference

    test = split_reference(straight.algorithm.cfg.dataset, 12, "test")["x"]
    straight.algorithm.train_mode(False)
    live = straight.algorithm.encode(test)["z"]  # what training ended with, every network loaded
    np.testing.assert_allclose(encoded["z"], live.numpy(), rtol=1e-4, atol=1e-5)


def encode(run, out, **keys):
    cmd = {
        "ckpt": str(run),
        "input": None,
        "split": None,
        "n": None,
        "out": str(out),
        "plot": False,
        "batch_size": 5,
        "device": "cpu",
        **keys,
    }
    encode_from_config(OmegaConf.create(cmd))
    return dict(np.load(out))


@pytest.fixture(scope="module")
def aae_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aae")
    cfg = plain_config(compose_train(["model=aae_supervised", *TINY, *MLP, "model.z_dim=2"]))
    build_trainer(cfg, tmp / "run").fit()
    return tmp / "run"


def test_gan_encode_writes_codes_in_input_order_with_labels_and_a_scatter(aae_run, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", images=images, labels=np.arange(7) % 5)
    out = encode(aae_run, tmp_path / "z.npz", input=str(tmp_path / "in.npz"), plot=True)
    assert out["z"].shape == (7, 2) and out["labels"].tolist() == [0, 1, 2, 3, 4, 0, 1]
    one = encode(aae_run, tmp_path / "one.npz", input=str(tmp_path / "in.npz"), batch_size=1)
    np.testing.assert_allclose(out["z"], one["z"], rtol=1e-5, atol=1e-6)  # order and values do not depend on batching
    assert (tmp_path / "z.png").exists()


def test_gan_encode_writes_the_encoders_last_hidden_layer_beside_z_when_asked(aae_run, tmp_path):
    plain = encode(aae_run, tmp_path / "z.npz", split="test", n=10)
    assert "h" not in plain
    both = encode(aae_run, tmp_path / "zh.npz", split="test", n=10, hidden=True)
    np.testing.assert_array_equal(both["z"], plain["z"])
    from gancli.data.base import split_reference
    from gancli.model import load_for_sampling

    model, _, _ = load_for_sampling(str(aae_run), torch.device("cpu"), use_ema=True)
    x = split_reference(model.cfg.dataset, 10, "test")["x"]
    with torch.no_grad():
        h = model.nets["encoder"].body(x)  # the features the code head reads
    assert both["h"].shape == (10, 16)
    np.testing.assert_allclose(both["h"], h.numpy(), rtol=1e-5, atol=1e-6)


def test_reconstruct_on_the_supervised_aae_needs_labels_and_class_all_draws_a_row_per_class(aae_run, tmp_path):
    from PIL import Image

    (tmp_path / "folder").mkdir()
    Image.new("RGB", (16, 16), (200, 0, 0)).save(tmp_path / "folder" / "a.png")
    base = {
        "ckpt": str(aae_run),
        "n": 8,
        "seed": 0,
        "nrow": 4,
        "batch_size": 4,
        "device": "cpu",
        "ema": True,
        "format": "png",
    }
    with pytest.raises(GanError, match="needs labelled inputs"):
        sample_from_config(
            OmegaConf.create({**base, "reconstruct": str(tmp_path / "folder"), "out": str(tmp_path / "r.png")})
        )
    sample_from_config(OmegaConf.create({**base, "class": "all", "format": "npz", "out": str(tmp_path / "c.npz")}))
    labels = np.load(tmp_path / "c.npz")["labels"]
    assert sorted(set(labels.tolist())) == [0, 1, 2, 3, 4]


def test_the_supervised_aae_draws_one_style_per_column_across_every_class(aae_run):
    """class=all in a picture: a row per class, and z (the style alone) shared down each column, as the
    paper's figure shows a style across every digit; bulk files keep independent draws."""
    import gancli

    model = gancli.load(aae_run, device="cpu")
    panel = model.sample_panels(n=8, nrow=4, grid=True, class_="all")["samples"]
    classes = model.algorithm.sample_classes()
    assert panel.meta["labels"].tolist() == torch.arange(classes).repeat_interleave(4).tolist()
    styles = panel.meta["z"].view(classes, 4, -1)
    assert torch.equal(styles, styles[:1].expand_as(styles)) and not torch.equal(styles[0, 0], styles[0, 1])
    assert not torch.equal(panel.data[0], panel.data[4])  # one style, another class: another image
    bulk = model.sample_panels(n=8, nrow=4, class_="all")["samples"].meta["z"]
    assert len(torch.unique(bulk, dim=0)) == 8


def test_encoding_bad_inputs_get_one_paragraph_messages(aae_run, tmp_path):
    np.savez(tmp_path / "grey.npz", images=np.zeros((2, 16, 16, 1), np.uint8))
    with pytest.raises(GanError, match=r"\(N, H, W, 3\) uint8"):
        encode(aae_run, tmp_path / "z.npz", input=str(tmp_path / "grey.npz"))
    with pytest.raises(GanError, match="give one of the two"):
        encode(aae_run, tmp_path / "z.npz", input=str(tmp_path / "grey.npz"), split="test")
    with pytest.raises(GanError, match="does not exist"):
        encode(aae_run, tmp_path / "z.npz", input=str(tmp_path / "missing"))


def test_encoding_with_a_model_without_an_encoder_names_the_families_that_have_one(tmp_path):
    cfg = plain_config(
        compose_train(
            ["model=dcgan", *TINY, "model.generator.width=4", "model.discriminator.width=4", "trainer.steps=1"]
        )
    )
    build_trainer(cfg, tmp_path / "gan").fit()
    with pytest.raises(GanError, match=r"needs a model with an encoder \(aae.*bigan_conv\).*dcgan"):
        encode(tmp_path / "gan", tmp_path / "z.npz", split="test")


def _noise_on_judged_codes(model: str, std: float, tmp_path) -> float:
    """The spread of (what D sees − the encoder's code) in the encoder's G phase of one step."""
    trainer = trainer_for(model, [*MLP, "trainer.batch_size=64"], tmp_path / str(std), f"model.d_input_noise={std}")
    algo, seen = trainer.algorithm, {}
    D = algo.nets["D"] if "D" in algo.nets else algo.nets["D_z"]
    E = algo.nets["encoder"]
    E.register_forward_hook(lambda m, i, o: seen.__setitem__("code", o))
    D.register_forward_pre_hook(lambda m, i: seen.__setitem__("judged", i[0]))
    algo.precision.step = lambda name, loss, opt: None  # the phases run; nothing is stepped
    algo.precision.steps = lambda updates: None
    if model == "aae_cluster":  # the categorical AAE's encoder gives {"y", "z"}: keep the z D_z judges

        def encode(x, enc=E.encode):
            out = enc(x)
            seen["code"] = out["z"]
            return out

        E.encode = encode
    algo.train_step(lambda: next(trainer.stream), 0)
    return (seen["judged"] - seen["code"]).std().item()


@pytest.mark.parametrize("model", ["aae_supervised", "aae_cluster"])
def test_d_input_noise_adds_gaussian_noise_of_that_std_to_every_code_d_judges(model, tmp_path):
    """model.d_input_noise (the reproduction's 0.3): in the encoder's G phase, what D sees is the encoder's code
    plus N(0, std²) noise; at 0 it is the code itself. Both AAE algorithms."""
    assert _noise_on_judged_codes(model, 0.0, tmp_path) == 0.0
    assert 0.25 < _noise_on_judged_codes(model, 0.3, tmp_path) < 0.35


def test_aae_supervised_is_the_reproductions_supervised_run():
    cfg = compose_train(["model=aae_supervised"])
    assert (cfg.model.z_dim, cfg.model.d_input_noise, list(cfg.optimizer.betas)) == (16, 0.3, [0.5, 0.999])
    assert cfg.optimizer.lr == 1e-4 and cfg.optimizer.clip_norm == 5.0  # adam_aae's otherwise
    plain = compose_train(["model=aae"])
    assert plain.model.d_input_noise == 0.0 and list(plain.optimizer.betas) == [0.1, 0.999]
