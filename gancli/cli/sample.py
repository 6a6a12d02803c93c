"""`gan sample`: grids, bulk sample files and interpolations from a checkpoint alone."""

from __future__ import annotations

from gancli.cli.app import guarded, run_app


@guarded
def task(cfg) -> None:
    from gancli.sampling import sample_from_config

    sample_from_config(cfg)


def main(argv: list[str] | None = None) -> int:
    return run_app("sample", "sample", task, argv)


if __name__ == "__main__":
    raise SystemExit(main())
