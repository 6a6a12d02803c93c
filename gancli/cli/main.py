"""`gan <subcommand> [overrides]`: pops the subcommand and hands the rest to that subcommand's Hydra app.

Subcommands are imported lazily, so `gan --help` never loads torch. A new subcommand is a module with a
`main(argv)` function plus one line here.
"""

from __future__ import annotations

import importlib
import sys

from gancli import __version__

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("gancli.cli.train", "train a GAN: gan train model=wgan_gp dataset=cifar10 trainer.steps=20000"),
    "sample": ("gancli.cli.sample", "draw samples from a checkpoint: gan sample ckpt=<run>/checkpoints/last.pt"),
}


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [
        f"gan {__version__} — train, sweep and sample GANs from composed configs.",
        "",
        "usage: gan <command> [key=value ...] [-m] [--cfg job] [--help]",
        "",
        "commands:",
        *(f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()),
        "",
        "Every command is a Hydra app: `gan train --help` lists its config groups and keys.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"gan {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        from gancli.cli.app import print_error
        from gancli.registry import did_you_mean

        print_error(f"unknown command '{name}'; choose one of: {', '.join(SUBCOMMANDS)}." + did_you_mean(name, SUBCOMMANDS))
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
