"""`gan report`: a static HTML page of a run or a sweep."""

from __future__ import annotations

import logging

from gancli.cli.command import Command


def task(cfg) -> None:
    from gancli.report import write_report

    page = write_report(cfg.run, cfg.out, cfg.metric)
    logging.getLogger("gancli").info("wrote %s", page)


def main(argv: list[str] | None = None) -> int:
    from gancli.cli.app import guarded, run_app

    return run_app("report", "gan_report", guarded(task), argv)


COMMAND = Command("a static HTML report of a run or a sweep: gan report run=<run or sweep dir>", main, order=3)
