"""`gan <subcommand> [overrides]`: pops the subcommand and hands the rest to that subcommand's Hydra app.

Subcommands are not listed here: each registers itself as an entry point of the group `gancli.commands`
(see `gancli.cli.command`), so a new one — gancli's or a plugin's — is a module plus one line of package
metadata. They are imported lazily and import no torch, so `gan --help` answers at once.
"""

from __future__ import annotations

import sys

from gancli import __version__
from gancli.core.plugins import COMMAND_GROUP, entry_points


def _commands() -> dict:
    return {ep.name: ep for ep in entry_points(COMMAND_GROUP)}


def _load(ep):
    from gancli.cli.command import Command

    command = ep.load()
    if not isinstance(command, Command):
        raise TypeError(f"entry point {ep.name} = {ep.value} is not a gancli.cli.command.Command")
    return command


def usage(commands: dict) -> str:
    loaded = sorted(((name, _load(ep)) for name, ep in commands.items()), key=lambda c: (c[1].order, c[0]))
    width = max((len(n) for n, _ in loaded), default=0)
    lines = [
        f"gan {__version__} — train, sweep and sample GANs from composed configs.",
        "",
        "usage: gan <command> [key=value ...] [-m] [--cfg job] [--help]",
        "",
        "commands:",
        *(f"  {name:<{width}}  {c.help}" for name, c in loaded),
        "",
        "Every command is a Hydra app: `gan train --help` lists its config groups and keys.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not commands:
        from gancli.cli.app import print_error

        print_error(
            f"no gan commands are registered (entry-point group '{COMMAND_GROUP}'): gancli's package "
            "metadata is missing or stale. Reinstall it: pip install -e . (from a checkout) or pip install gancli."
        )
        return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(commands))
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"gan {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        from gancli.cli.app import print_error
        from gancli.core.registry import did_you_mean

        print_error(
            f"unknown command '{name}'; choose one of: {', '.join(sorted(commands))}." + did_you_mean(name, commands)
        )
        return 2
    return _load(commands[name]).main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
