"""A `gan` subcommand from outside gancli."""

from gancli.cli.command import Command


def main(argv=None) -> int:
    print("toyplugin: commands, families and datasets from an installed package")
    return 0


COMMAND = Command("a plugin's own command: gan toyinfo", main)
