"""A `gan` subcommand from outside gancli, a full Hydra app on the plugin's own primary config."""

from pathlib import Path

from gancli.cli.command import Command


def task(cfg) -> None:
    print(f"toyplugin says {cfg.greeting}: commands, families and datasets from an installed package")


def main(argv=None) -> int:
    from gancli.cli.app import guarded, run_app

    return run_app("toyinfo", "toyinfo", guarded(task), argv, config_dir=Path(__file__).parent / "conf")


COMMAND = Command("a plugin's own command: gan toyinfo greeting=hi", main)
