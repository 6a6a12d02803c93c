"""Adversarial losses against their textbook formulas; gradient penalty and weight clipping by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from gancli.core.errors import GanError
from gancli.data.base import Field
from gancli.losses import LOSSES, build_loss, clip_weights, gradient_penalty, r1_penalty
from gancli.nets.dcgan import DCGANDiscriminator
from gancli.training.run import build_trainer, plain_config

REAL = torch.tensor([-2.0, -0.5, 0.0, 1.5, 3.0])
FAKE = torch.tensor([2.5, -1.0, 0.25, -3.0, 0.75])


def sig(t):
    return torch.sigmoid(t.double())


def close(a, b):
    return torch.allclose(
        torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), rtol=1e-6, atol=1e-6
    )


# ------------------------------------------------------------------------------------------ formulas


def test_registered_losses():
    assert set(LOSSES.names()) == {"minimax", "nonsat", "lsgan", "wgan", "hinge"}


@pytest.mark.parametrize("name", ["minimax", "nonsat"])
def test_cross_entropy_d_loss(name):
    expected = -torch.log(sig(REAL)).mean() - torch.log(1 - sig(FAKE)).mean()
    got = build_loss(name).d_loss(REAL, FAKE)
    assert got.dim() == 0
    assert close(got, expected)


def test_minimax_g_loss():
    expected = torch.log(1 - sig(FAKE)).mean()  # G minimises log(1 − D(G(z)))
    assert close(build_loss("minimax").g_loss(FAKE), expected)


def test_nonsat_g_loss():
    expected = -torch.log(sig(FAKE)).mean()  # G minimises −log D(G(z))
    assert close(build_loss("nonsat").g_loss(FAKE), expected)


def test_minimax_and_nonsat_differ():
    # Same fixed point, different objectives: a test that mixed them up would not notice otherwise.
    assert not close(build_loss("minimax").g_loss(FAKE), build_loss("nonsat").g_loss(FAKE))


@pytest.mark.parametrize("a,b,c", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0)])
def test_lsgan(a, b, c):
    loss = build_loss("lsgan", a=a, b=b, c=c)
    r, f = REAL.double(), FAKE.double()
    expected_d = 0.5 * ((r - b) ** 2).mean() + 0.5 * ((f - a) ** 2).mean()
    expected_g = 0.5 * ((f - c) ** 2).mean()
    assert close(loss.d_loss(REAL, FAKE), expected_d)
    assert close(loss.g_loss(FAKE), expected_g)


def test_lsgan_defaults_are_paper_setting():
    loss = build_loss("lsgan")
    assert (loss.a, loss.b, loss.c) == (0.0, 1.0, 1.0)


def test_wgan():
    loss = build_loss("wgan")
    assert close(loss.d_loss(REAL, FAKE), FAKE.double().mean() - REAL.double().mean())
    assert close(loss.g_loss(FAKE), -FAKE.double().mean())


def test_hinge():
    loss = build_loss("hinge")
    r, f = REAL.double(), FAKE.double()
    expected_d = torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean()
    assert close(loss.d_loss(REAL, FAKE), expected_d)
    assert close(loss.g_loss(FAKE), -f.mean())


def test_hand_computed_values():
    """A few numbers worked out on paper, independent of any torch formula."""
    r, f = torch.tensor([0.0]), torch.tensor([0.0])
    assert math.isclose(build_loss("nonsat").d_loss(r, f).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(build_loss("nonsat").g_loss(f).item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(build_loss("minimax").g_loss(f).item(), -math.log(2), rel_tol=1e-6)
    r, f = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    assert math.isclose(build_loss("hinge").d_loss(r, f).item(), (0 + 1) / 2 + (0 + 1.5) / 2, rel_tol=1e-6)
    assert math.isclose(build_loss("lsgan").d_loss(r, f).item(), 0.5 * (1 + 1) / 2 + 0.5 * (4 + 0.25) / 2, rel_tol=1e-6)


@pytest.mark.parametrize("name", ["minimax", "nonsat"])
def test_cross_entropy_stable_for_large_logits(name):
    """float32 logits of ±60 would give log(0) in the naive form; the losses stay finite and exact."""
    real = torch.tensor([-60.0, 60.0])
    fake = torch.tensor([60.0, -60.0])
    loss = build_loss(name)
    d, g = loss.d_loss(real, fake), loss.g_loss(fake)
    assert torch.isfinite(d) and torch.isfinite(g)
    # float64 reference: −log σ(t) = log(1 + e^{−t})
    nls = lambda t: torch.log1p(torch.exp(-t.double()))  # noqa: E731
    assert close(d, nls(real).mean() + nls(-fake).mean())


def test_build_loss_errors():
    with pytest.raises(GanError, match="unknown loss 'hingee'.*hinge"):
        build_loss("hingee")
    with pytest.raises(GanError, match="loss 'wgan'"):
        build_loss("wgan", a=1.0)


# ------------------------------------------------------------------------------------------ penalty


class LinearCritic(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return x.flatten(1) @ self.w


@pytest.mark.parametrize(
    "w,expected",
    [
        ([3.0, 4.0, 0.0, 0.0], 16.0),  # ‖w‖ = 5 → (5 − 1)²
        ([0.6, 0.0, 0.0, 0.8], 0.0),  # ‖w‖ = 1 → 0
        ([0.0, 0.5, 0.0, 0.0], 0.25),  # ‖w‖ = 0.5 → 0.25
    ],
)
def test_gradient_penalty_linear_critic(w, expected):
    torch.manual_seed(0)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    gp = gradient_penalty(LinearCritic(torch.tensor(w)), real, fake)
    assert gp.dim() == 0
    assert math.isclose(gp.item(), expected, abs_tol=1e-5)


def test_penalties_on_a_joint_input_take_the_norm_over_all_its_parts():
    """ALI / BiGAN critics see pairs (x, z): D(x, z) = w·x + v·z has ∇ = (w, v) everywhere."""
    w, v = torch.tensor([3.0, 0.0, 0.0, 0.0]), torch.tensor([0.0, 4.0])

    def critic(pair):
        x, z = pair
        return x.flatten(1) @ w + z @ v

    torch.manual_seed(0)
    real, fake = (torch.randn(5, 1, 2, 2), torch.randn(5, 2)), (torch.randn(5, 1, 2, 2), torch.randn(5, 2))
    assert math.isclose(gradient_penalty(critic, real, fake).item(), (5.0 - 1.0) ** 2, rel_tol=1e-6)
    x, z = (t.clone().requires_grad_(True) for t in real)
    assert math.isclose(r1_penalty(critic((x, z)), (x, z)).item(), 25.0, rel_tol=1e-6)


def test_gradient_penalty_loss_scale_does_not_change_value():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    gp = gradient_penalty(LinearCritic(torch.tensor([3.0, 4.0, 0.0, 0.0])), real, fake, scale=torch.tensor(1024.0))
    assert math.isclose(gp.item(), 16.0, rel_tol=1e-5)


class QuadraticCritic(nn.Module):
    """D(x) = a·Σx² per sample, so ∇D(x̂) = 2a·x̂ and ‖∇D(x̂)‖ = 2|a|·‖x̂‖."""

    def __init__(self, a: float = 1.0):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x):
        return self.a * (x**2).flatten(1).sum(1)


def test_gradient_penalty_quadratic_critic_reproduces_eps():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(5, 3, 2, 2, generator=g), torch.randn(5, 3, 2, 2, generator=g)
    a = 0.3
    torch.manual_seed(123)
    eps = torch.rand(5, 1, 1, 1)  # the function's first draw
    x_hat = eps * real + (1 - eps) * fake
    expected = ((2 * a * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()

    torch.manual_seed(123)
    gp = gradient_penalty(QuadraticCritic(a), real, fake)
    assert math.isclose(gp.item(), expected.item(), rel_tol=1e-5)
    # A different ε draw gives a different value: the check above really depends on the interpolates.
    torch.manual_seed(124)
    assert not math.isclose(gradient_penalty(QuadraticCritic(a), real, fake).item(), expected.item(), rel_tol=1e-3)


def test_gradient_penalty_is_differentiable_wrt_critic():
    """create_graph=True: the penalty must push the critic's weights (here, a → 1/(2‖x̂‖))."""
    torch.manual_seed(0)
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    critic = QuadraticCritic(5.0)
    gp = gradient_penalty(critic, real, fake)
    (grad,) = torch.autograd.grad(gp, critic.a)
    assert grad.item() > 0  # a too large → the penalty wants it smaller


def test_gradient_penalty_does_not_backprop_into_inputs():
    real = torch.randn(3, 4, requires_grad=True)
    fake = torch.randn(3, 4, requires_grad=True)
    gp = gradient_penalty(LinearCritic(torch.tensor([3.0, 4.0, 0.0, 0.0])), real, fake)
    gp.backward()
    assert real.grad is None and fake.grad is None


# ------------------------------------------------------------------------------------------ R1


def test_r1_penalty_quadratic_critic():
    """D(x) = a·Σx² → ∇D(x) = 2a·x, so E‖∇D‖² = 4a²·E‖x‖²."""
    torch.manual_seed(0)
    real = torch.randn(5, 3, 2, 2).requires_grad_(True)
    a = 0.7
    r1 = r1_penalty(QuadraticCritic(a)(real), real)
    expected = (4 * a * a * real.detach().flatten(1).pow(2).sum(1)).mean()
    assert math.isclose(r1.item(), expected.item(), rel_tol=1e-5)
    # a loss scale (AMP fp16) leaves the value unchanged
    real2 = real.detach().clone().requires_grad_(True)
    scaled = r1_penalty(QuadraticCritic(a)(real2), real2, scale=torch.tensor(512.0))
    assert math.isclose(scaled.item(), expected.item(), rel_tol=1e-5)


def test_r1_penalty_linear_critic_and_its_gradient():
    """A linear D has slope w everywhere: R1 = ‖w‖², whose gradient in w is 2w (it shrinks D's slope)."""
    real = torch.randn(4, 4).requires_grad_(True)
    critic = LinearCritic(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    r1 = r1_penalty(critic(real), real)
    assert math.isclose(r1.item(), 25.0, rel_tol=1e-6)
    (grad,) = torch.autograd.grad(r1, critic.w)
    assert torch.allclose(grad, 2 * torch.tensor([3.0, 4.0, 0.0, 0.0]))


@pytest.mark.parametrize("every", [1, 3])
def test_r1_is_lazy_and_scaled(compose_cfg, tiny_overrides, tmp_path, every):
    """R1 runs on D updates 0, every, 2·every, ... only. Every update (every=1): it joins the update's loss
    as γ/2·E‖∇D(x)‖² on D as the update sees it. Lazily (every=k>1, StyleGAN2's Dreg): a D step of its
    own after the adversarial one, on D as that left it, weighing γ/2·k; logged ×k, amortised."""
    cfg = compose_cfg([*tiny_overrides, "model=dcgan", "loss.r1_weight=2.0", f"loss.r1_every={every}"])
    algo = build_trainer(plain_config(cfg), tmp_path).algorithm
    assert algo.compile_blocker() is None  # compiled, R1 and its forward pass run eagerly (core.eager)
    torch.manual_seed(0)
    real = torch.randn(16, 3, 16, 16).clamp(-1, 1)
    inputs = algo.latent(16)
    steps, step = [], algo.precision.step

    def recording_step(name, loss, optimizer):  # each D optimizer step, with what R1 would be right now
        x = real.clone().requires_grad_(True)
        steps.append((loss.item(), r1_penalty(algo.D(x)[0], x).item()))
        step(name, loss, optimizer)

    algo.precision.step = recording_step
    seen = []
    for d_index in range(2 * every):
        fake = algo.g_forward(algo.G, inputs).detach()
        before = len(steps)
        logs = algo.d_step(real, fake, inputs, 0.0, algo.r1_due(d_index))
        updates = steps[before:]
        seen.append("r1" in logs)
        due = d_index % every == 0
        assert len(updates) == (2 if due and every > 1 else 1)
        if due and every > 1:  # the R1 step: its whole loss is the weighted penalty on the updated D
            loss, pen = updates[1]
            assert math.isclose(loss, 0.5 * 2.0 * every * pen, rel_tol=1e-4)
            assert math.isclose(logs["r1"].item(), pen * every, rel_tol=1e-4)
        elif due:  # one update: the logged penalty is D's before the update
            assert math.isclose(logs["r1"].item(), updates[0][1], rel_tol=1e-4)
    assert seen == [i % every == 0 for i in range(2 * every)]


@pytest.mark.parametrize("every", [1, 4, 16])
def test_lazy_r1_rescales_the_d_optimizer_as_stylegan2(compose_cfg, tiny_overrides, tmp_path, every):
    """stylegan2-ada-pytorch: mb_ratio = k / (k + 1); lr × mb_ratio, betas ** mb_ratio (D only; none when k = 1)."""
    cfg = compose_cfg([*tiny_overrides, "model=wgan_gp", "loss.r1_weight=1.0", f"loss.r1_every={every}"])
    algo = build_trainer(plain_config(cfg), tmp_path).algorithm
    ratio = every / (every + 1) if every > 1 else 1.0
    d, g = algo.optimizers["D"].param_groups[0], algo.optimizers["G"].param_groups[0]
    assert d["lr"] == pytest.approx(1e-4 * ratio) and g["lr"] == pytest.approx(1e-4)
    assert d["betas"] == pytest.approx((0.0, 0.9**ratio)) and g["betas"] == pytest.approx((0.0, 0.9))


def test_r1_is_logged_when_it_runs_on_any_critic_update(compose_cfg, tiny_overrides, tmp_path, monkeypatch):
    """n_critic 2, R1 every 4 D updates: R1 runs on the first D update of every other step, never the
    last; the step's logs still carry it, as the mean over its D updates of the amortised penalty."""
    import gancli.algorithms.gan as gan_module

    pens = []

    def spy(*args, **kwargs):
        pens.append(r1_penalty(*args, **kwargs))
        return pens[-1]

    monkeypatch.setattr(gan_module, "r1_penalty", spy)
    cfg = compose_cfg([*tiny_overrides, "model=dcgan", "model.n_critic=2", "loss.r1_weight=1.0", "loss.r1_every=4"])
    trainer = build_trainer(plain_config(cfg), tmp_path)
    algo, next_batch = trainer.algorithm, trainer._next_batch
    for step in range(4):
        before = len(pens)
        logs = algo.train_step(next_batch, step)
        ran = pens[before:]
        assert len(ran) == (step % 2 == 0)
        if ran:
            assert math.isclose(logs["r1"].item(), ran[0].item() * 4 / 2, rel_tol=1e-5)
        else:
            assert "r1" not in logs


def test_lazy_r1_steps_every_d_parameter_as_stylegan2_ada(compose_cfg, tiny_overrides, tmp_path):
    """stylegan2-ada's Dreg backpropagates `real_logits * 0 + R1`: every D parameter gets a gradient, zero
    where R1 does not reach it (the output bias: ∇ₓD does not depend on it), so Adam steps it too and its
    momentum moves it on. Without that term Adam would skip the output bias in the R1 step."""
    cfg = compose_cfg([*tiny_overrides, "model=dcgan", "loss.r1_weight=1.0", "loss.r1_every=4"])
    algo = build_trainer(plain_config(cfg), tmp_path).algorithm
    bias = algo.D.out.bias
    opt = algo.optimizers["D"]
    torch.manual_seed(0)
    real = torch.randn(16, 3, 16, 16).clamp(-1, 1)
    inputs = algo.latent(16)
    fake = algo.g_forward(algo.G, inputs).detach()
    seen, step = [], algo.precision.step

    def recording_step(name, loss, optimizer):
        before = bias.detach().clone()
        step(name, loss, optimizer)
        seen.append((before, bias.detach().clone(), {n: p.grad for n, p in algo.D.named_parameters()}))

    algo.precision.step = recording_step
    algo.d_step(real, fake, inputs, 0.0, algo.r1_due(0))  # the adversarial update, then the lazy R1 one
    assert len(seen) == 2
    before, after, grads = seen[1]
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert grads["out.bias"].eq(0).all()  # R1 does not reach it: a zero gradient
    assert any(g.abs().sum() > 0 for n, g in grads.items() if n != "out.bias")
    assert int(opt.state[bias]["step"]) == 2  # Adam counted both steps for the bias
    assert not torch.equal(before, after)  # and its momentum moved it in the R1 step
    beta1 = opt.param_groups[0]["betas"][0]
    first = seen[0][2]["out.bias"]  # the adversarial step's gradient, then a zero one
    assert torch.allclose(opt.state[bias]["exp_avg"], beta1 * (1 - beta1) * first)


def test_r1_config_is_checked(compose_cfg, tiny_overrides, tmp_path):
    cfg = compose_cfg([*tiny_overrides, "loss.r1_every=0", "loss.r1_weight=1"])
    with pytest.raises(GanError, match="r1_every"):
        build_trainer(plain_config(cfg), tmp_path)


# ------------------------------------------------------------------------------------------ clipping


def test_clip_weights_dcgan_discriminator():
    torch.manual_seed(0)
    D = DCGANDiscriminator(Field("image", (3, 16, 16)), width=8, norm="batch")
    assert max(p.abs().max().item() for p in D.parameters()) > 0.01  # BatchNorm scales start near 1
    before = {k: v.clone() for k, v in D.named_parameters()}
    clip_weights(D, 0.01)
    for name, p in D.named_parameters():
        assert p.min().item() >= -0.01 and p.max().item() <= 0.01, name
        inside = before[name].abs() <= 0.01
        assert torch.equal(p[inside], before[name][inside]), name  # values inside the box are untouched


def test_wgan_preset_clamps_the_critic_before_each_of_its_updates(compose_cfg, tiny_overrides, tmp_path):
    """The original WGAN code clamps D's weights at the start of every critic iteration, so every critic
    loss is computed by a clipped critic (G's step then sees D as its last update left it)."""
    cfg = compose_cfg([*tiny_overrides, "model=wgan", "model.critic_burst=null"])
    trainer = build_trainer(plain_config(cfg), tmp_path)
    clip = float(cfg.loss.clip)
    assert clip == 0.01
    algo = trainer.algorithm
    D, step, seen = algo.D, algo.precision.step, []

    def checking_step(name, loss, optimizer):
        if name == "D":
            seen.append(max(p.abs().max().item() for p in D.parameters()))
        step(name, loss, optimizer)

    algo.precision.step = checking_step
    start = [p.detach().clone() for p in D.parameters()]
    for g_step in range(3):
        logs = algo.train_step(trainer._next_batch, g_step)
        assert all(torch.isfinite(v).all() for v in logs.values())
    assert len(seen) == 15 and all(m <= clip + 1e-7 for m in seen)
    # training did move the critic (and hit the bound), so the check above is not vacuous
    assert any(not torch.equal(a, b) for a, b in zip(start, D.parameters()))
    assert any(math.isclose(m, clip, rel_tol=1e-6) for m in seen)


# ------------------------------------------------------------------------------------------ critic schedule


def test_wgan_critic_bursts_follow_the_original_code():
    """WGAN's main.py: Diters = 100 if gen_iterations < 25 or gen_iterations % 500 == 0 else opt.Diters."""
    from gancli.algorithms.gan import CriticSchedule

    schedule = CriticSchedule(5, {"n_critic": 100, "first": 25, "every": 500})
    reference = [100 if g < 25 or g % 500 == 0 else 5 for g in range(1600)]
    assert [schedule.at(g) for g in range(1600)] == reference
    for step in (0, 1, 24, 25, 26, 499, 500, 501, 1000, 1600):
        assert schedule.updates_before(step) == sum(reference[:step])
    plain = CriticSchedule(5, None)
    assert [plain.at(g) for g in (0, 500)] == [5, 5] and plain.updates_before(7) == 35
    with pytest.raises(GanError, match="critic_burst"):
        CriticSchedule(5, {"n_critic": 0, "first": 25, "every": 500})


def test_the_wgan_preset_runs_its_bursts(compose_cfg, tiny_overrides, tmp_path):
    cfg = compose_cfg([*tiny_overrides, "model=wgan", "model.critic_burst.n_critic=7", "model.critic_burst.first=2"])
    algo = build_trainer(plain_config(cfg), tmp_path).algorithm
    assert [algo.critic.at(g) for g in (0, 1, 2, 500)] == [7, 7, 5, 7]


def test_the_gradient_penalty_interpolates_the_views_d_is_shown(compose_cfg, tiny_overrides, tmp_path, monkeypatch):
    """With DiffAugment, the penalty's reals and fakes are the augmented views D judged (README: StudioGAN
    interpolates the un-augmented images instead)."""
    import gancli.algorithms.gan as gan_module

    cfg = compose_cfg([*tiny_overrides, "model=wgan_gp", "tricks.diffaugment=[translation,cutout]"])
    algo = build_trainer(plain_config(cfg), tmp_path).algorithm
    views, given = [], []
    d_view = algo.d_view
    monkeypatch.setattr(algo, "d_view", lambda x, sigma: views.append(d_view(x, sigma)) or views[-1])
    real_gp = gan_module.gradient_penalty
    monkeypatch.setattr(
        gan_module, "gradient_penalty", lambda c, r, f, *a: given.append((r, f)) or real_gp(c, r, f, *a)
    )
    torch.manual_seed(0)
    real = torch.rand(16, 3, 16, 16) * 2 - 1
    inputs = algo.latent(16)
    algo.d_step(real, algo.g_forward(algo.G, inputs).detach(), inputs, 0.0)
    ((r, f),) = given
    assert r is views[0] and f is views[1] and not torch.equal(r, real)
