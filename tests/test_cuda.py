"""On CUDA devices (skipped without one): the fast path trains on the GPU, compiled updates and CUDA graphs
give eager's losses, and with two GPUs NCCL ranks (SyncBatchNorm included) match one process.

`scripts/gpu_check.sh` runs these with the speed benchmark on a lent GPU machine."""

from __future__ import annotations

import math

import pytest
import torch
from test_distributed import POINTS, two_ranks_against_one

from gancli.core.checkpoint import load_checkpoint
from gancli.training.run import build_trainer, plain_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")

FAST = ["trainer.device=cuda", "trainer.compile=true", "trainer.amp=true", "trainer.channels_last=true"]


@pytest.fixture
def exact_fp32(monkeypatch):
    """No TF32 and eager's random numbers in compiled code, so compiled and eager runs can be compared."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)


def test_the_fast_settings_train_on_the_gpu_and_the_checkpoint_loads_on_the_cpu(tmp_path, compose_cfg, tiny_overrides):
    trainer = build_trainer(plain_config(compose_cfg([*tiny_overrides, *FAST, "trainer.steps=6"])), tmp_path)
    assert trainer.device.type == "cuda" and trainer.stream.tensors["x"].is_cuda  # data resident on the GPU
    assert trainer.algorithm.precision.dtype in (torch.bfloat16, torch.float16)
    s = trainer.fit()
    assert s["status"] == "finished" and all(math.isfinite(v) for v in s["final_losses"].values())
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert all(t.device.type == "cpu" for t in state["nets"]["G"].values())


@pytest.mark.parametrize(
    "model, mode", [("dcgan", "true"), ("wgan_gp", "true"), ("dcgan", "reduce-overhead"), ("stylegan2", "true")]
)
def test_compiled_updates_give_the_eager_losses_on_the_gpu(
    tmp_path, compose_cfg, tiny_overrides, exact_fp32, model, mode
):
    extra = (
        ["model.width=8", "model.max_width=16", "model.r1_every=2", "model.pl_every=2"] if model == "stylegan2" else []
    )
    base = [o for o in tiny_overrides if not o.startswith("model.")] if extra else tiny_overrides
    runs = []
    for compile_mode in ("false", mode):
        torch._dynamo.reset()
        cfg = plain_config(
            compose_cfg(
                [
                    f"model={model}",
                    *base,
                    *extra,
                    "trainer.device=cuda",
                    "trainer.steps=6",
                    "trainer.log_every=1",
                    f"trainer.compile={compile_mode}",
                ]
            )
        )
        runs.append(build_trainer(cfg, tmp_path / compile_mode).fit())
    eager, compiled = runs
    for k, v in eager["final_losses"].items():
        assert compiled["final_losses"][k] == pytest.approx(v, rel=1e-3, abs=1e-4), k


@two_gpus
def test_two_gpus_with_nccl_match_one_on_the_whole_batch(tmp_path):
    two_ranks_against_one(tmp_path, [*POINTS, "trainer.device=auto"], rtol=1e-3, atol=1e-4)


@two_gpus
def test_sync_batch_norm_makes_two_gpus_match_one(tmp_path):
    """G keeps its BatchNorm here: SyncBatchNorm takes its statistics over the global batch."""
    points = [o for o in POINTS if o != "model.generator.norm=none"]
    two_ranks_against_one(tmp_path, [*points, "trainer.device=auto", "trainer.sync_bn=true"], rtol=1e-3, atol=1e-4)
