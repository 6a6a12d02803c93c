"""logger=wandb: the run as a Weights & Biases run — the composed config, the scalars at their step, the final
grid as an image. Offline by default (`logger.wandb.mode=offline`): everything stays under <run dir>/wandb,
and `wandb sync <run dir>/wandb/offline-run-*` uploads it later. A resumed run keeps the same run id (kept in
<run dir>/loggers.json): offline, each process writes its own offline-run-* folder under that id."""

from __future__ import annotations

import secrets
from pathlib import Path

from gancli.core.rules import one_of
from gancli.training.loggers.base import Logger, read_state, register, write_state

EXIT = {"finished": 0, "stopped": 0}  # anything else: 1


def _name(v) -> bool:
    return v is None or (isinstance(v, str) and bool(v.strip()))


@register
class WandbLogger(Logger):
    name, requires, extra = "wandb", "wandb", "wandb"
    config_rules = {
        "mode": one_of("offline", "online", "disabled"),
        "project": ("a non-empty name", lambda v: isinstance(v, str) and bool(v.strip())),
        "entity": ("a W&B team or user name (or null: your default)", _name),
        "run_name": ("a name (or null: <model>-<dataset>)", _name),
        "group": ("a name (or null)", _name),
        "tags": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v)),
    }

    def __init__(
        self,
        mode: str = "offline",
        project: str = "gancli",
        entity: str | None = None,
        run_name: str | None = None,
        group: str | None = None,
        tags: list | None = None,
    ):
        self.mode, self.project, self.entity = mode, project, entity
        self.run_name, self.group, self.tags = run_name, group, list(tags or [])
        self.run = None

    def start(self, run_dir: Path, config: dict, resume_step: int | None) -> None:
        import wandb

        saved = read_state(run_dir).get("wandb", {}).get("id")
        run_id = saved if resume_step is not None and saved else secrets.token_hex(4)
        model, data = config.get("model", {}).get("name", "gan"), config.get("dataset", {}).get("name", "data")
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.run_name or f"{model}-{data}",
            group=self.group,
            tags=self.tags,
            config=config,
            dir=str(run_dir),
            mode=self.mode,
            id=run_id,
            resume="allow" if self.mode == "online" else None,  # offline runs cannot resume; each keeps the id
            settings=wandb.Settings(console="off"),  # leave the terminal (and its progress bar) alone
        )
        write_state(run_dir, "wandb", {"id": run_id, "project": self.project})

    def log(self, step: int, scalars: dict[str, float]) -> None:
        self.run.log(dict(scalars), step=step)

    def finish(self, summary: dict) -> None:
        import wandb

        grid = summary.get("final_grid")
        if grid and Path(grid).is_file():
            self.run.log({"final_grid": wandb.Image(str(grid))}, step=int(summary["step"]))

    def close(self, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=EXIT.get(status, 1))
            self.run = None
