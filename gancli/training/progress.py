"""What the user watches: a live rich bar on a terminal, periodic log lines elsewhere, and summary tables."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

log = logging.getLogger("gancli")


def _console() -> Console:
    import rich

    return rich.get_console()


def fmt_scalars(scalars: dict[str, float], keys=None) -> str:
    keys = keys or [k for k in scalars if k.startswith("loss/")]
    return "  ".join(f"{k.removeprefix('loss/')} {scalars[k]:.4f}" for k in keys if k in scalars)


class TrainProgress:
    """Live bar (step, img/s, D/G losses, ETA) when `mode` allows; a log line per update otherwise."""

    def __init__(self, total: int, start: int, mode="auto"):
        live = str(mode).lower()
        self.live = sys.stderr.isatty() or _console().is_terminal if live == "auto" else live == "true"
        self.total, self.start = total, start
        self._bar = None
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[speed]}"),
                TextColumn("{task.fields[losses]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=_console(),
                transient=False,
                refresh_per_second=4,
            )
            self._task = self._bar.add_task("train", total=total, completed=start, speed="", losses="")

    def __enter__(self):
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def update(self, step: int, scalars: dict[str, float], status: str = "") -> None:
        """status: the algorithm's few words on where it is (a resolution, a fade-in α), shown first."""
        speed = f"{scalars['img_per_s']:.0f} img/s" if "img_per_s" in scalars else ""
        losses = "  ".join(filter(None, (status, fmt_scalars(scalars))))
        if self._bar is not None:
            self._bar.update(self._task, completed=step, speed=speed, losses=losses)
        else:
            log.info("step %d/%d  %s  %s", step, self.total, speed, losses)


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(k, v)
    _console().print(table)
