"""Data-parallel training under torchrun: one process per device, gradients averaged at every optimizer step.

gancli does not wrap networks in DistributedDataParallel. Its families call sub-networks directly
(StyleGAN's mapping and synthesis), freeze D inside G's step, take double backwards (gradient penalty,
R1, path length) and add layers while they train (ProGAN); DDP's reducer only sees gradients that flow
through its wrapper's forward, so each of those would need its own workaround. Instead every optimizer
step all-reduces the gradients of the parameters it is about to update (one flat tensor, one collective),
as NVlabs' StyleGAN3 training loop does, through torch.distributed itself. What it costs: no overlap of
communication with the backward pass.

The batch `trainer.batch_size` is global: each rank trains on its slice of every global batch (the data
order is the same on every rank), so a run's data does not depend on the world size. Noise differs per
rank (ranks > 0 re-seed their generators), rank 0's stream is the one a single process would draw.
"""

from __future__ import annotations

import atexit
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gancli.core.errors import GanError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 writes logs, grids, checkpoints and metrics."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # -- collectives (no-ops in a single process) -------------------------------------------------
    def mean_(self, t: torch.Tensor) -> torch.Tensor:
        """In place: the mean of `t` over ranks."""
        if self.distributed:
            dist.all_reduce(t)
            t.div_(self.size)
        return t

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if it is true on one (a stop signal seen by some ranks stops all at one step)."""
        if not self.distributed:
            return flag
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t)
        return bool(t.item())

    def sync_grads(self, params) -> None:
        """Average the gradients of `params` over ranks: one flat all-reduce. Which parameters have a
        gradient is decided by the same code on every rank, so the flat layouts agree."""
        if not self.distributed:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(self.size)
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (at the start and after a network grows)."""
        if not self.distributed:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, 0)

    def gather(self, obj) -> list:
        """Every rank's `obj` (plain data or CPU tensors), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, 0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


SINGLE = World()
_world: World = SINGLE


def env_world() -> World:
    """What torchrun (or srun with its variables set) says this process is."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return SINGLE
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def current() -> World:
    """This process's world; joins the process group on first use when torchrun started us."""
    global _world
    if _world is SINGLE and env_world().distributed and not dist.is_initialized():
        init()
    return _world


def init() -> World:
    """Join the process group torchrun describes (env:// rendezvous). The backend serves CPU tensors
    with gloo and CUDA tensors with NCCL, so the same group works for either trainer.device."""
    global _world
    world = env_world()
    if not world.distributed:
        return SINGLE
    if not dist.is_available():
        raise GanError(
            "WORLD_SIZE > 1 asks for distributed training, but this PyTorch build has no "
            "torch.distributed; run without torchrun."
        )
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and dist.is_nccl_available()
        if cuda:
            torch.cuda.set_device(world.local_rank % torch.cuda.device_count())
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30))
        atexit.register(_leave)
    _world = world
    return world


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def device_for(name: str, world: World) -> str:
    """trainer.device under torchrun: `auto` and `cuda` mean this rank's own GPU (LOCAL_RANK)."""
    name = str(name)
    if not world.distributed or name not in ("auto", "cuda"):
        return name
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        if world.local_rank >= count:
            raise GanError(
                f"torchrun started {world.local_rank + 1}+ processes on this node, but it has only {count} "
                f"CUDA GPU(s): use --nproc_per_node={count} (one process per GPU)."
            )
        return f"cuda:{world.local_rank}"
    return "cpu" if name == "auto" else name


def check_resume_world(state: dict, world: World) -> None:
    """Exact resume needs the world size the checkpoint was written with (each rank's RNG is in it)."""
    saved = int(state.get("world_size", 1))
    if saved != world.size:
        how = f"with torchrun --nproc_per_node={saved}" if saved > 1 else "without torchrun (one process)"
        raise GanError(
            f"this checkpoint was written by a run of {saved} process(es) and this run has {world.size}: "
            f"an exact resume needs the same world size (each rank's random state is in the checkpoint). "
            f"Resume it {how}."
        )


def agree_on_run_dir(argv: list[str]) -> list[str]:
    """`gan train` under torchrun, before Hydra: every rank trains in rank 0's run dir (Hydra would stamp
    each process's own time), and only rank 0 writes .hydra/ and train.log there."""
    world = env_world()
    if not world.distributed:
        return argv
    if "-m" in argv or "--multirun" in argv:
        raise GanError(
            "torchrun runs one training job on several processes; it cannot run a sweep (-m). Sweep "
            "with a launcher instead (hydra/launcher=joblib or submitit_slurm, see the README), each "
            "job a plain `gan train`."
        )
    world = init()
    keys = {a.split("=", 1)[0] for a in argv if "=" in a}
    if "hydra.run.dir" not in keys:  # conf/train.yaml's pattern, stamped once by rank 0
        import secrets

        stamp = datetime.datetime.now().strftime("outputs/%Y-%m-%d/%H-%M-%S-") + secrets.token_hex(3)
        argv = [*argv, f"hydra.run.dir={world.broadcast(stamp)}"]
    if world.rank:
        argv = [
            *argv,
            *(["hydra.output_subdir=null"] if "hydra.output_subdir" not in keys else []),
            "hydra/job_logging=gancli_console",
        ]
    return argv
