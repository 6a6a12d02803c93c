"""From a composed config to a finished run: build data, algorithm and trainer; resume; report."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gancli.algorithms import build_algorithm
from gancli.algorithms.config_rules import check_train_config
from gancli.core.checkpoint import load_checkpoint
from gancli.core.device import select_device
from gancli.core.errors import GanError
from gancli.core.precision import Precision, resolve_amp
from gancli.data import build_dataset
from gancli.data.base import rank_share
from gancli.training import distributed, rng
from gancli.training.lock import RunLock
from gancli.training.progress import fmt_scalars, print_table
from gancli.training.trainer import Trainer

log = logging.getLogger("gancli")


def plain_config(cfg: DictConfig) -> dict:
    """The run spec with every interpolation resolved: what config.yaml and checkpoints carry."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except Exception as exc:  # a missing mandatory value (???) or a broken interpolation
        raise GanError(f"the config is incomplete: {str(exc).splitlines()[0]}") from None


def build_trainer(config: dict, run_dir: Path) -> Trainer:
    """Data, algorithm and trainer of a resolved plain config. The data and family builders read attributes, so
    they get a DictConfig view of it; the trainer gets the plain dict itself, which its checkpoints carry."""
    check_train_config(config)
    cfg = OmegaConf.create(config)
    t = config["trainer"]
    world = distributed.current()
    device = select_device(distributed.device_for(t["device"], world))
    seed = int(config["seed"])
    rng.seed_everything(seed)
    source = build_dataset(cfg.dataset, num_workers=int(t["num_workers"]))
    precision = Precision(resolve_amp(t["amp"], device), device, world.sync_grads if world.distributed else None)
    if world.distributed:  # packs and groups must also tile the batch one rank sees
        cfg.trainer.batch_size = rank_share(int(t["batch_size"]), world.size)
        check_train_config(OmegaConf.to_container(cfg, resolve=True))
    algorithm = build_algorithm(cfg, source.spec, device, precision)
    if world.rank:  # each rank its own noise; rank 0 draws what a single process would
        rng.seed_everything(seed + 1_000_003 * world.rank)
    return Trainer(config, algorithm, source, run_dir, world)


def train(
    cfg: DictConfig, run_dir: str | Path, overrides: list[str] | None = None, stop_after: int | None = None
) -> dict:
    run_dir = Path(run_dir)
    state = None
    if cfg.get("resume"):
        state = load_checkpoint(Path(cfg.resume) / "checkpoints" / "last.pt")
        config = state["config"]
        if any(o.lstrip("+~").startswith("trainer.steps=") for o in overrides or []):
            config["trainer"]["steps"] = int(cfg.trainer.steps)
    else:
        config = plain_config(cfg)
    config["resume"] = None
    world = distributed.current()
    if state is not None:
        distributed.check_resume_world(state, world)
    if not world.main:  # rank 0 logs, writes and holds the run's lock
        logging.getLogger("gancli").setLevel(logging.WARNING)
        return _train(config, state, run_dir, overrides, stop_after)
    lock = RunLock(run_dir).acquire()
    try:
        return _train(config, state, run_dir, overrides, stop_after)
    finally:
        lock.release()


def _train(
    config: dict, state: dict | None, run_dir: Path, overrides: list[str] | None, stop_after: int | None
) -> dict:
    trainer = build_trainer(config, run_dir)
    main = trainer.world.main
    if main:
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resumed %s at step %d of %d", run_dir, trainer.step, trainer.total)
    m = config["model"]
    log.info(
        "%s | %s | loss %s | %s | device %s%s%s",
        m["name"],
        trainer.source.description,
        config["loss"]["name"],
        config["optimizer"]["name"],
        trainer.device,
        f" ({trainer.algorithm.precision.dtype})" if trainer.algorithm.precision.enabled else "",
        f" | {trainer.world.size} processes (torchrun), batch {config['trainer']['batch_size']} in all"
        if trainer.world.distributed
        else "",
    )
    summary = trainer.fit(stop_after=stop_after)
    summary["overrides"] = list(overrides or [])
    summary["world_size"] = trainer.world.size
    if main:
        _report(summary, trainer)
    if summary["status"] == "interrupted":
        raise SystemExit(128 + int(summary["signal"] or 2))
    return summary


def _report(s: dict, trainer: Trainer) -> None:
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in trainer.algorithm.nets.items()}
    rows = [
        ("status", f"{s['status']} at step {s['step']}/{s['steps']}"),
        ("time", f"{s['seconds']:.1f}s ({s['img_per_s']:.0f} img/s)"),
        ("final losses", fmt_scalars(s["scalars"]) or "-"),
        ("networks", ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in params.items())),
        ("run dir", s["run_dir"]),
        ("checkpoint", s["checkpoint"]),
    ]
    if s["final_grid"]:
        rows.append(("final grid", s["final_grid"]))
    if s["metrics"]:
        rows.append(("metrics", "  ".join(f"{k} {v:.4g}" for k, v in s["metrics"].items())))
    for error in s["callback_errors"]:
        rows.append(("callback failed", error))
    for error in s.get("logger_errors", []):
        rows.append(("logger failed", error))
    if s["status"] == "interrupted":
        rows.append(("continue with", f"gan train resume={s['run_dir']}"))
    print_table("gan train", rows)
