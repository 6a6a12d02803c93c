"""Trainer features: every preset trains and samples in every format, AMP, schedules, EMA, compile."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import image_presets
from omegaconf import OmegaConf

from gancli.commands.sample import sample_from_config
from gancli.core.errors import GanError
from gancli.training.ema import EMA
from gancli.training.run import build_trainer, plain_config
from gancli.training.schedules import exp_decay, linear_decay

PRESETS = image_presets()
MLP_PRESETS = ("gan", "cgan")
CONDITIONAL = {"cgan": 5, "cdcgan": 5, "acgan": 5, "infogan": 10}  # classes on shapes (infogan: its Cat(10) code)


def _sample_cfg(**kw):
    base = {
        "ckpt": "",
        "n": 6,
        "seed": 0,
        "nrow": 3,
        "out": "",
        "format": "png",
        "interpolate": False,
        "traverse": None,
        "class": None,
        "batch_size": 4,
        "device": "cpu",
        "ema": True,
    }
    return OmegaConf.create({**base, **kw})


def _tiny(model: str, tiny_overrides: list[str]) -> list[str]:
    if model in MLP_PRESETS:  # MLP networks: no conv width keys
        return [o for o in tiny_overrides if ".width=" not in o] + [
            "model.generator.hidden=[32,32]",
            "model.discriminator.hidden=[32,32]",
        ]
    return tiny_overrides


@pytest.mark.slow
@pytest.mark.parametrize("model", PRESETS)
def test_every_preset_trains_then_samples_every_format(model, tmp_path, compose_cfg, tiny_overrides):
    cfg = plain_config(compose_cfg([f"model={model}", *_tiny(model, tiny_overrides), "trainer.steps=2"]))
    summary = build_trainer(cfg, tmp_path / "run").fit()
    assert summary["status"] == "finished" and summary["step"] == 2
    assert all(math.isfinite(v) for v in summary["final_losses"].values())
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.pt")
    sample_from_config(_sample_cfg(ckpt=ckpt, out=str(tmp_path / "g.png")))
    sample_from_config(_sample_cfg(ckpt=ckpt, format="npz", out=str(tmp_path / "s.npz")))
    sample_from_config(_sample_cfg(ckpt=ckpt, format="npy", out=str(tmp_path / "s.npy")))
    sample_from_config(_sample_cfg(ckpt=ckpt, format="png_dir", out=str(tmp_path / "d")))
    sample_from_config(_sample_cfg(ckpt=ckpt, interpolate=True, out=str(tmp_path / "i.png")))
    assert np.load(tmp_path / "s.npz")["images"].shape == (6, 16, 16, 3)
    assert np.load(tmp_path / "s.npy").shape == (6, 16, 16, 3)
    assert len(list((tmp_path / "d").glob("*.png"))) == 6
    assert (tmp_path / "g.png").stat().st_size and (tmp_path / "i.png").stat().st_size
    if model in CONDITIONAL:  # every class (InfoGAN: every category of its code) can be asked for
        sample_from_config(_sample_cfg(ckpt=ckpt, format="npz", n=20, out=str(tmp_path / "c.npz"), **{"class": "all"}))
        z = np.load(tmp_path / "c.npz")
        labels = z["labels"] if "labels" in z else z["categorical"]
        assert sorted(set(labels.tolist())) == list(range(CONDITIONAL[model]))


def test_bf16_autocast_trains_on_cpu_with_a_penalty(tmp_path, compose_cfg, tiny_overrides):
    cfg = plain_config(compose_cfg(["model=wgan_gp", *tiny_overrides, "trainer.steps=2", "trainer.amp=bf16"]))
    trainer = build_trainer(cfg, tmp_path)
    assert trainer.algorithm.precision.dtype == torch.bfloat16
    s = trainer.fit()
    assert all(math.isfinite(v) for v in s["scalars"].values())


def test_fp16_on_cpu_is_refused_with_a_hint(tmp_path, compose_cfg, tiny_overrides):
    cfg = plain_config(compose_cfg([*tiny_overrides, "trainer.amp=fp16"]))
    with pytest.raises(GanError, match="bf16"):
        build_trainer(cfg, tmp_path)


def test_unknown_device_and_missing_cuda_are_clear_errors(tmp_path, compose_cfg, tiny_overrides):
    with pytest.raises(GanError, match="not a device"):
        build_trainer(plain_config(compose_cfg([*tiny_overrides, "trainer.device=gpu0"])), tmp_path)
    if not torch.cuda.is_available():
        with pytest.raises(GanError, match="no usable CUDA"):
            build_trainer(plain_config(compose_cfg([*tiny_overrides, "trainer.device=cuda"])), tmp_path)


def test_linear_decay_holds_then_falls_to_zero():
    f = linear_decay(total=100, start=0.5)
    assert [f(0), f(49), f(50), f(75), f(100)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    f = linear_decay(total=100, start=0.5, final=0.2)  # optimizer.lr_final
    assert [f(49), f(75), f(100)] == pytest.approx([1.0, 0.6, 0.2])


def test_exp_decay_holds_then_falls_geometrically_to_lr_final():
    """BiGAN's code: the rate, then log-linearly down to 1 % of it over the second half."""
    f = exp_decay(total=100, start=0.5, final=0.01)
    assert [f(0), f(49), f(50), f(75), f(100)] == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.01])
    with pytest.raises(GanError, match="lr_final=0.0"):
        exp_decay(total=100, start=0.5, final=0.0)


def test_lr_schedule_reaches_the_optimizers(tmp_path, compose_cfg, tiny_overrides):
    cfg = plain_config(
        compose_cfg(
            [*tiny_overrides, "trainer.steps=4", "optimizer.lr_schedule=linear_decay", "optimizer.lr_decay_start=0.5"]
        )
    )
    trainer = build_trainer(cfg, tmp_path)
    trainer.fit(stop_after=3)
    lr = cfg["optimizer"]["lr"]
    assert trainer.algorithm.optimizers["G"].param_groups[0]["lr"] == pytest.approx(lr * 0.5)
    assert trainer.algorithm.optimizers["D"].param_groups[0]["lr"] == pytest.approx(lr * 0.5)


def test_ema_is_the_exponential_average_and_feeds_sampling():
    net = torch.nn.Linear(3, 2)
    ema = EMA({"G": net}, decay=0.9)
    w0 = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update({"G": net}, step=1)
    assert torch.allclose(ema.copies["G"].weight, 0.9 * w0 + 0.1 * (w0 + 1.0))
    with pytest.raises(GanError):
        EMA({"G": net}, decay=1.5)


def test_ema_rampup_caps_the_half_life_at_a_fraction_of_the_steps_tracked():
    net = torch.nn.Linear(3, 2)
    ema = EMA({"G": net}, decay=0.999, start=10, rampup=0.05)  # constant decay: half-life ≈ 692.8 steps
    assert ema.decay_at(110) == pytest.approx(0.5 ** (1 / 5.0))  # 100 steps tracked → half-life 5
    assert ema.decay_at(10 + 20_000) == pytest.approx(0.999)  # the cap: the plain decay
    assert ema.decay_at(11) == pytest.approx(0.5**20)  # 1 step tracked: ~a copy
    assert EMA({"G": net}, decay=0.999).decay_at(5) == 0.999  # no ramp-up: constant
    avg = ema.copies["G"].weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update({"G": net}, step=110)
    d = 0.5 ** (1 / 5.0)
    assert torch.allclose(ema.copies["G"].weight, d * avg + (1 - d) * net.weight)
    with pytest.raises(GanError, match="ema_rampup"):
        EMA({"G": net}, decay=0.999, rampup=0.0)


def test_the_trainer_ramps_the_ema_up_as_stylegan2_ada(tmp_path, compose_cfg, tiny_overrides):
    """training_loop.py: ema_nimg = min(ema_kimg·1000, cur_nimg·ema_rampup); β = 0.5 ** (batch / ema_nimg),
    with cur_nimg the images seen before this batch. In steps: the update after step s (0-based) uses
    β = 0.5 ** (1 / min(half-life, rampup · s)) — so the first one (s = 0) is a plain copy."""
    cfg = plain_config(
        compose_cfg(
            [*tiny_overrides, "model=wgan_gp", "trainer.steps=3", "trainer.ema=0.999", "trainer.ema_rampup=0.5"]
        )
    )
    trainer = build_trainer(cfg, tmp_path)
    G, avg = trainer.algorithm.nets["G"], trainer.ema.copies["G"]
    half_life = math.log(0.5) / math.log(0.999)
    expected = None
    for s in range(3):
        trainer.fit(stop_after=s + 1)
        live = [p.detach().clone() for p in G.parameters()]
        beta = 0.5 ** (1 / max(min(half_life, 0.5 * s), 1e-8))
        expected = live if expected is None else [beta * e + (1 - beta) * w for e, w in zip(expected, live)]
        assert all(torch.allclose(a, e, atol=1e-6) for a, e in zip(avg.parameters(), expected)), s
        if s == 0:
            assert all(torch.equal(a, w) for a, w in zip(avg.parameters(), live))


def test_trainer_passes_the_ema_rampup(tmp_path, compose_cfg, tiny_overrides):
    cfg = plain_config(compose_cfg([*tiny_overrides, "trainer.steps=2", "trainer.ema=0.99", "trainer.ema_rampup=0.1"]))
    trainer = build_trainer(cfg, tmp_path)
    assert trainer.ema.rampup == 0.1 and trainer.ema.decay_at(20) == pytest.approx(0.5**0.5)


def test_ema_batch_norm_refresh_averages_fresh_batches_and_keeps_weights():
    live = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    ema = EMA({"G": live}, decay=0.9)
    avg = ema.copies["G"]
    with torch.no_grad():
        avg[0].weight.mul_(3.0)  # the average no longer matches the live net
    weights = {k: v.clone() for k, v in avg.named_parameters()}
    batches = [torch.randn(8, 2, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    feed = iter(batches)
    ema.refresh_batch_norm(lambda nets: nets["G"](next(feed)), batches=2)
    h = [avg[0](x).detach() for x in batches]
    bn = avg[1]
    assert torch.allclose(bn.running_mean, (h[0].mean(0) + h[1].mean(0)) / 2, atol=1e-6)
    assert torch.allclose(bn.running_var, (h[0].var(0) + h[1].var(0)) / 2, atol=1e-5)
    assert bn.momentum == live[1].momentum and not bn.training
    assert all(torch.equal(v, weights[k]) for k, v in avg.named_parameters())


@pytest.mark.parametrize("batches", [0, 2])
def test_ema_run_refreshes_batch_norm_statistics_when_asked(tmp_path, compose_cfg, tiny_overrides, batches):
    cfg = plain_config(
        compose_cfg(
            [*tiny_overrides, "model=dcgan", "trainer.steps=3", "trainer.ema=0.5", f"trainer.ema_bn_batches={batches}"]
        )
    )
    trainer = build_trainer(cfg, tmp_path)
    trainer.fit()
    live, avg = trainer.algorithm.nets["G"].state_dict(), trainer.ema.copies["G"].state_dict()
    stats = [k for k in live if k.endswith("running_mean")]
    assert stats
    copied = all(torch.equal(live[k], avg[k]) for k in stats)
    assert copied == (batches == 0)


def test_ema_run_samples_from_the_average(tmp_path, compose_cfg, tiny_overrides):
    cfg = plain_config(compose_cfg([*tiny_overrides, "trainer.steps=3", "trainer.ema=0.5"]))
    trainer = build_trainer(cfg, tmp_path)
    trainer.fit()
    assert trainer.sampling_nets()["G"] is trainer.ema.copies["G"]
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert set(state["ema"]) == {"G"}


@pytest.mark.slow
def test_torch_compile_trains_on_cpu(tmp_path, compose_cfg, tiny_overrides):
    pytest.importorskip("torch._inductor")
    cfg = plain_config(compose_cfg([*tiny_overrides, "trainer.steps=2", "trainer.compile=true"]))
    s = build_trainer(cfg, tmp_path).fit()
    assert s["status"] == "finished" and all(math.isfinite(v) for v in s["final_losses"].values())
    # compiled in place: the checkpoint's keys are the plain module's
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert not any("_orig_mod" in k for k in state["nets"]["G"])


def test_a_full_disk_mid_run_is_one_clear_error_and_keeps_the_last_checkpoint(
    tmp_path, compose_cfg, tiny_overrides, monkeypatch
):
    import errno

    import gancli.core.checkpoint as ck

    cfg = plain_config(compose_cfg([*tiny_overrides, "trainer.steps=6", "trainer.ckpt_every=2"]))
    trainer = build_trainer(cfg, tmp_path)
    real_save, calls = ck.torch.save, []

    def filling_disk(obj, f, *a, **k):
        calls.append(obj["step"])
        if len(calls) > 1:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(ck.torch, "save", filling_disk)
    with pytest.raises(GanError, match="No space left"):
        trainer.fit()
    monkeypatch.setattr(ck.torch, "save", real_save)
    assert ck.load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 2
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))


COMPILED_CASES = {  # name: (model, overrides)
    "dcgan": ("dcgan", []),
    "reduce_overhead": ("dcgan", []),  # CUDA graphs' mode (graphs only on a GPU)
    "wgan_gp": ("wgan_gp", []),  # the penalty: eager, inside a compiled D step
    "r1_every_step": ("dcgan", ["loss.r1_weight=1.0", "loss.r1_every=1"]),  # D's forward itself eager
    "acgan": ("acgan", []),  # a family's extra loss terms
    "linear_lr": ("dcgan", ["optimizer.lr_schedule=linear_decay", "optimizer.lr_decay_start=0"]),  # eager optimizer
    "stylegan2": ("stylegan2", ["model.width=8", "model.max_width=16", "model.r1_every=2", "model.pl_every=2"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(COMPILED_CASES))
def test_compiled_steps_give_the_eager_losses(tmp_path, compose_cfg, tiny_overrides, case, monkeypatch):
    """trainer.compile=true compiles each update whole (the family's step_functions): the same losses and
    weights as eager to float tolerance. Penalties and the forward passes they differentiate run eagerly
    inside the compiled steps (compiled graphs have no double backward). Inductor draws its own random
    numbers unless told to fall back to eager's, which makes the runs comparable."""
    pytest.importorskip("torch._inductor")
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    model, extra = COMPILED_CASES[case]
    runs = []
    for compiled in (False, True):
        torch._dynamo.reset()
        base = [o for o in tiny_overrides if not o.startswith("model.")] if case == "stylegan2" else tiny_overrides
        mode = ("reduce-overhead" if case == "reduce_overhead" else "true") if compiled else "false"
        cfg = plain_config(
            compose_cfg(
                [f"model={model}", *base, *extra, "trainer.steps=4", "trainer.log_every=1", f"trainer.compile={mode}"]
            )
        )
        trainer = build_trainer(cfg, tmp_path / str(compiled))
        runs.append((trainer.fit(), trainer))
    (eager, t_eager), (compiled, t_compiled) = runs
    algorithm = t_compiled.algorithm
    assert algorithm.step_functions and all(
        hasattr(getattr(algorithm, f), "_torchdynamo_orig_callable") for f in algorithm.step_functions
    )  # the steps, not the modules
    assert not any(getattr(m, "_compiled_call_impl", None) for m in algorithm.nets.values())
    assert algorithm.precision.compile_optimizer == (case != "linear_lr")
    for k, v in eager["final_losses"].items():
        assert compiled["final_losses"][k] == pytest.approx(v, rel=1e-3, abs=1e-4), k
    for name, net in t_eager.algorithm.nets.items():
        for key, value in net.state_dict().items():
            torch.testing.assert_close(algorithm.nets[name].state_dict()[key], value, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_a_family_without_step_functions_has_its_networks_compiled(tmp_path, compose_cfg, tiny_overrides):
    pytest.importorskip("torch._inductor")
    cfg = plain_config(compose_cfg(["model=aae", "dataset=shapes", "trainer.steps=1", "trainer.compile=true"]))
    algorithm = build_trainer(cfg, tmp_path).algorithm
    assert not algorithm.step_functions
    assert all(getattr(m, "_compiled_call_impl", None) for m in algorithm.nets.values())


def test_compile_with_a_growing_network_is_refused_up_front(tmp_path, compose_cfg, tiny_overrides):
    base = [o for o in tiny_overrides if not o.startswith("model.")]
    cfg = plain_config(compose_cfg(["model=progan", *base, "trainer.compile=true"]))
    with pytest.raises(GanError, match="fade α .* recompile"):
        build_trainer(cfg, tmp_path)


def test_spectral_discriminator_gets_the_dcgan_init():
    from gancli.data import Field
    from gancli.nets import build_discriminator

    torch.manual_seed(0)
    D = build_discriminator({"arch": "dcgan", "width": 16, "norm": "spectral"}, Field("image", (3, 32, 32)))
    w = D.body.body[0].parametrizations.weight.original
    assert abs(w.std().item() - 0.02) < 0.004


def test_nearest_upsampling_generator_has_no_transposed_convs_and_right_shape():
    from gancli.data import Field
    from gancli.nets import build_generator

    for r in (28, 32, 64):
        G = build_generator({"arch": "dcgan", "width": 8, "upsample": "nearest"}, Field("image", (3, r, r)), 16)
        assert G(torch.randn(2, 16)).shape == (2, 3, r, r)
        assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules()) == 1  # only the 1×1 → s0 projection
    with pytest.raises(GanError, match="transposed, nearest"):
        build_generator({"arch": "dcgan", "upsample": "bilinear"}, Field("image", (3, 32, 32)), 16)
