"""logger=csv: <run dir>/metrics.csv, one row per line of metrics.jsonl and one column per scalar (a scalar
first logged later, an evaluation's say, adds a column: the file is rewritten then, once per new column)."""

from __future__ import annotations

import csv
from pathlib import Path

from gancli.training.loggers.base import Logger, register


@register
class CsvLogger(Logger):
    name = "csv"

    def __init__(self, file: str = "metrics.csv"):
        self.file = file
        self.path: Path | None = None
        self.columns: list[str] = ["step"]

    def start(self, run_dir: Path, config: dict, resume_step: int | None) -> None:
        self.path = Path(run_dir) / self.file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.is_file():
            self.columns = ["step"]
            self._rewrite([])
            return
        rows, self.columns = self._read()
        if resume_step is not None:  # drop rows logged after the checkpoint we resume, as metrics.jsonl does
            rows = [r for r in rows if int(r["step"]) <= resume_step]
        self._rewrite(rows)

    def _read(self) -> tuple[list[dict], list[str]]:
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            rows = [r for r in reader if r.get("step") not in (None, "") and None not in r]  # a cut last row
            return rows, list(reader.fieldnames or ["step"])

    def _rewrite(self, rows: list[dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.path)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        new = [k for k in scalars if k not in self.columns]
        if new:
            rows, _ = self._read()
            self.columns += new
            self._rewrite(rows)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, restval="").writerow({"step": step, **scalars})

    def rewind(self, step: int) -> None:
        rows, _ = self._read()
        self._rewrite([r for r in rows if int(r["step"]) <= step])
