"""`gan sample`: grids, bulk sample files and the family's own modes, from a checkpoint alone."""

from __future__ import annotations

from gancli.cli.command import Command


def task(cfg) -> None:
    from gancli.sampling import sample_from_config

    sample_from_config(cfg)


def main(argv: list[str] | None = None) -> int:
    from gancli.cli import schema
    from gancli.cli.app import guarded, run_app

    return run_app("sample", "sample", guarded(task), argv, schemas=schema.register_sample)


COMMAND = Command("draw samples from a checkpoint: gan sample ckpt=<run>/checkpoints/last.pt", main, order=1)


if __name__ == "__main__":
    raise SystemExit(main())
