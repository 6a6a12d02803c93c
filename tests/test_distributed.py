"""Data-parallel training on the CPU with gloo: two processes (spawned, or under torchrun) against one."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import compose_train

from gancli.core.checkpoint import load_checkpoint
from gancli.core.errors import GanError
from gancli.data.base import TensorStream, rank_share
from gancli.training import distributed
from gancli.training.run import build_trainer, plain_config

# an MLP pair on points with G's BatchNorm off, so two half batches make exactly the gradient of the whole one
POINTS = [
    "model=gan",
    "model.generator.norm=none",
    "dataset=ring8",
    "dataset.n=1024",
    "trainer.batch_size=32",
    "trainer.log_every=2",
    "trainer.sample_every=0",
    "trainer.ckpt_every=0",
    "logger=none",
    "trainer.progress=false",
    "trainer.steps=4",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixed_noise(algorithm, world: int, rank: int):
    """The algorithm's training noise replaced by draw i of a fixed global batch, this rank's rows of it:
    the only randomness left is the data order, which sharding keeps the same for any world size."""
    original, draws = algorithm.latent, [0]

    def latent(n, labels=None, generator=None):
        if generator is not None:
            return original(n, labels, generator)
        draws[0] += 1
        z = torch.randn(n * world, algorithm.z_dim, generator=torch.Generator().manual_seed(draws[0]))
        return {"z": z[rank * n : (rank + 1) * n].to(algorithm.device)}

    algorithm.latent = latent


def _worker(rank: int, world: int, port: int, config: dict, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    distributed.init()
    trainer = build_trainer(copy.deepcopy(config), Path(out) / "run")
    fixed_noise(trainer.algorithm, world, rank)
    trainer.fit()
    torch.save({k: m.state_dict() for k, m in trainer.algorithm.nets.items()}, Path(out) / f"rank{rank}.pt")


def two_ranks_against_one(tmp_path, overrides: list[str], rtol: float, atol: float) -> None:
    """Two spawned ranks on half batches and one process on the whole batch end with the same weights
    (identical on both ranks, equal to the single process's to rtol / atol); rank 0 wrote the checkpoint."""
    config = plain_config(compose_train(overrides))
    mp.spawn(_worker, args=(2, free_port(), config, str(tmp_path / "two")), nprocs=2, join=True)
    single = build_trainer(copy.deepcopy(config), tmp_path / "one")
    fixed_noise(single.algorithm, 1, 0)
    single.fit()
    ranks = [torch.load(tmp_path / "two" / f"rank{r}.pt", weights_only=True, map_location="cpu") for r in (0, 1)]
    for net, module in single.algorithm.nets.items():
        for key, value in module.state_dict().items():
            assert torch.equal(ranks[0][net][key], ranks[1][net][key]), f"ranks differ at {net}.{key}"
            torch.testing.assert_close(
                ranks[0][net][key],
                value.cpu(),
                rtol=rtol,
                atol=atol,
                msg=f"{net}.{key}: two ranks on half batches ≠ one process on the whole",
            )
    assert (tmp_path / "two" / "run" / "checkpoints" / "last.pt").is_file()  # rank 0 wrote it


@pytest.mark.slow
def test_two_ranks_match_one_process_on_the_whole_batch(tmp_path):
    two_ranks_against_one(tmp_path, POINTS, rtol=1e-4, atol=1e-5)


def test_shards_of_a_global_batch_are_its_rows(tmp_path):
    data = {"x": torch.arange(40).float()[:, None]}
    whole = TensorStream(data, 8, seed=3)
    shards = [TensorStream(data, 8, seed=3) for _ in range(4)]
    for r, s in enumerate(shards):
        s.shard(r, 4)
    for _ in range(7):  # across an epoch boundary
        assert torch.equal(next(whole)["x"], torch.cat([next(s)["x"] for s in shards]))


def test_a_world_size_that_does_not_divide_the_batch_is_named():
    with pytest.raises(
        GanError,
        match=r"trainer.batch_size=65 is the global batch, shared by 2 processes.*"
        r"trainer.batch_size=64 or 66",
    ):
        rank_share(65, 2)
    stream = TensorStream({"x": torch.zeros(100, 1)}, 64, seed=0)
    stream.shard(0, 2)
    with pytest.raises(GanError, match="shared by 2 processes"):
        stream.set_batch_size(33)


def test_sync_bn_on_cpu_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(distributed, "current", lambda: distributed.World(0, 2, 0))
    config = plain_config(compose_train(POINTS + ["trainer.sync_bn=true"]))
    with pytest.raises(GanError, match="trainer.sync_bn=true needs CUDA"):
        build_trainer(config, tmp_path)


def test_resume_with_another_world_size_is_refused():
    with pytest.raises(GanError, match=r"2 process\(es\) and this run has 1.*torchrun --nproc_per_node=2"):
        distributed.check_resume_world({"world_size": 2}, distributed.SINGLE)
    with pytest.raises(GanError, match="without torchrun"):
        distributed.check_resume_world({}, distributed.World(0, 2, 0))


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "gancli",
            "train",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_torchrun_trains_in_one_run_dir_and_resumes_exactly(tmp_path):
    """WGAN-GP: the critic's gradient penalty takes a double backward on each rank."""
    common = [
        "model=wgan_gp",
        "dataset=ring8",
        "dataset.n=1024",
        "trainer.batch_size=32",
        "trainer.log_every=5",
        "trainer.ckpt_every=10",
        "trainer.sample_every=10",
        "trainer.progress=false",
        "logger=csv",  # written by rank 0 alone: each step once
    ]
    straight = torchrun([*common, "trainer.steps=20", "hydra.run.dir=straight"], tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = torchrun([*common, "trainer.steps=10"], tmp_path)  # rank 0 stamps the run dir
    assert first.returncode == 0, first.stderr[-3000:]
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 1, f"one run dir for both ranks, got {runs}"
    run = runs[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step_0000010.pt"]
    assert (run / ".hydra").is_dir() and (run / "train.log").is_file() and (run / "final.png").is_file()
    resumed = torchrun([f"resume={run}", "trainer.steps=20"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == [5, 10, 15, 20]
    a, b = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (tmp_path / "straight", run))
    assert a["step"] == b["step"] == 20 and a["world_size"] == 2 and len(a["rank_rng"]) == 2
    for net in a["nets"]:
        for key in a["nets"][net]:
            assert torch.equal(a["nets"][net][key], b["nets"][net][key]), f"resume differs at {net}.{key}"
    one = subprocess.run(
        [sys.executable, "-m", "gancli", "train", f"resume={run}", "trainer.steps=30"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode != 0 and "torchrun --nproc_per_node=2" in one.stderr and "Traceback" not in one.stderr
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 20  # the refused resume lost nothing


def test_profile_writes_a_trace(tmp_path):
    config = plain_config(compose_train(POINTS + ["trainer.steps=14", "trainer.profile=true"]))
    build_trainer(config, tmp_path).fit()
    traces = list((tmp_path / "profile").glob("*.pt.trace.json"))
    assert len(traces) == 1 and traces[0].stat().st_size > 1000
