"""`gan eval`: score a checkpoint or a set of samples (FID, KID, IS, precision / recall, ...)."""

from __future__ import annotations

from gancli.cli.command import Command


def task(cfg) -> None:
    from gancli.evaluation import eval_from_config

    eval_from_config(cfg)


def main(argv: list[str] | None = None) -> int:
    from gancli.cli.app import guarded, run_app

    return run_app("eval", "gan_eval", guarded(task), argv)


COMMAND = Command("score a checkpoint or samples: gan eval ckpt=<run>/checkpoints/last.pt metrics=[fid,kid,pr]", main,
                  order=2)
