"""`gan train`: compose a run spec and train it; `resume=<run dir>` continues a run in place."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gancli.cli.command import Command
from gancli.core.errors import GanError

RESUME_CHANGEABLE = ("resume", "trainer.steps")


def prepare(argv: list[str]) -> list[str]:
    """`resume=DIR` → train inside DIR (Hydra would otherwise make a new run dir) without rewriting .hydra/.
    Under torchrun, every rank then agrees on rank 0's run dir."""
    return _shared_run_dir(_resume_in_place(argv))


def _shared_run_dir(argv: list[str]) -> list[str]:
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:  # torch is imported only under torchrun
        return argv
    from gancli.training.distributed import agree_on_run_dir

    return agree_on_run_dir(argv)


def _resume_in_place(argv: list[str]) -> list[str]:
    resume = [a for a in argv if a.startswith("resume=")]
    if not resume:
        return argv
    run_dir = Path(resume[-1].split("=", 1)[1]).expanduser()
    if "-m" in argv or "--multirun" in argv:
        raise GanError("resume= continues one run; it cannot be combined with -m.")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise GanError(
            f"cannot resume '{run_dir}': no checkpoints/last.pt there. Pass the run dir that `gan train` "
            "printed (it holds config.yaml and checkpoints/)."
        )
    return [*argv, f"hydra.run.dir={run_dir}", "hydra.output_subdir=null"]


def check_resume_overrides(overrides: list[str]) -> None:
    """A resumed run keeps its saved config; only its length may grow."""
    stray = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in RESUME_CHANGEABLE]
    if stray:
        raise GanError(
            f"resume= continues a run with its own saved config; only trainer.steps may change "
            f"(to extend training). Drop: {' '.join(stray)}."
        )


def task(cfg) -> dict | None:
    from gancli.cli.app import job_context, write_summary
    from gancli.training.run import train

    run_dir, _, overrides = job_context()
    if cfg.resume is not None:
        check_resume_overrides(overrides)
    _one_gpu_per_job(cfg)
    summary = train(cfg, run_dir=run_dir, overrides=overrides)
    from gancli.training.distributed import env_world

    if env_world().main:  # under torchrun rank 0 writes the run's files
        write_summary(run_dir, summary)
    best = summary.get("best")
    if best is not None:  # what a sweeper optimises (hydra/sweeper=optuna): the run's best eval.best value
        return best["value"]
    return summary


def _one_gpu_per_job(cfg) -> None:
    """hydra/launcher=joblib on a machine with several GPUs: job k trains on GPU k mod count (its worker
    processes outlive a job, so CUDA_VISIBLE_DEVICES cannot be set per job). SLURM gives each
    submitit_slurm job its own GPUs itself."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    hc = HydraConfig.get()
    if (
        hc.mode != RunMode.MULTIRUN
        or "joblib" not in str(hc.launcher.get("_target_", ""))
        or str(cfg.trainer.device) != "auto"
        or cfg.get("resume")
    ):
        return
    import torch

    count = torch.cuda.device_count()
    if count > 1:
        with open_dict(cfg):
            cfg.trainer.device = f"cuda:{hc.job.num % count}"


def sweep_table(sweep_dir: Path) -> bool:
    """The closing table of a sweep, read from each job's summary.json (robust to failed jobs)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from gancli.cli.app import SUMMARY_FILE

    rows = []
    jobs = (p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))  # .submitit: the launcher's
    for job in sorted(jobs, key=lambda p: (len(p.name), p.name)):
        f = job / SUMMARY_FILE
        rows.append((job, json.loads(f.read_text()) if f.is_file() else {"status": "no summary (crashed?)"}))
    shared = set.intersection(*(set(s.get("overrides", [])) for _, s in rows)) if rows else set()
    # escaped: a list override (logger=[csv,mlflow]) is not rich markup
    title = f"sweep: {sweep_dir}" + (f"\nevery job: {' '.join(sorted(shared))}" if shared and len(rows) > 1 else "")
    title = escape(title)
    table = Table(title=title, title_justify="left")
    metric = next((s["best"]["key"] for _, s in rows if s.get("best")), None)
    metric = metric or next(
        (k.split("/", 1)[1] for _, s in rows for k in s.get("metrics", {}) if k.startswith("eval/")), None
    )
    columns = [
        "job",
        "overrides",
        "status",
        "steps",
        "loss D",
        "loss G",
        *([metric] if metric else []),
        "time",
        "grids",
    ]
    for col in columns:
        table.add_column(col, overflow="fold")
    failed = False
    for job, s in rows:
        ok = s.get("status") == "finished"
        failed |= not ok
        losses = s.get("final_losses", {})
        table.add_row(
            job.name,
            escape(" ".join(o for o in s.get("overrides", []) if o not in shared or len(rows) == 1)),
            s.get("status", "?") if ok else f"[red]{s.get('status', '?')}[/]: {s.get('error', '')}",
            str(s.get("step", "")),
            _fmt(losses.get("loss/D")),
            _fmt(losses.get("loss/G")),
            *([_metric(s, metric)] if metric else []),
            f"{s['seconds']:.0f}s" if "seconds" in s else "",
            str(s.get("final_grid", "")),
        )
    Console().print(table)
    return failed


def _metric(summary: dict, key: str) -> str:
    """The job's best value of eval.best when it kept one, else its last evaluation's."""
    best = summary.get("best") or {}
    if best.get("key") == key and best.get("value") is not None:
        return f"{best['value']:.4g} (best, step {best['step']})"
    value = summary.get("metrics", {}).get(f"eval/{key}")
    return f"{value:.4g}" if isinstance(value, (int, float)) else ""


def _fmt(x) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else ""


def main(argv: list[str] | None = None) -> int:
    from gancli.cli.app import guarded, run_app

    return run_app("train", "train", guarded(task), argv, prepare=prepare, sweep_table=sweep_table, writes_run_dir=True)


COMMAND = Command("train a GAN: gan train model=wgan_gp dataset=cifar10 trainer.steps=20000", main, order=0)


if __name__ == "__main__":
    raise SystemExit(main())
