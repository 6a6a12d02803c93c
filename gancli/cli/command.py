"""A `gan` subcommand as the dispatcher sees it. Each command module defines one and registers it under
the entry-point group `gancli.commands` (gancli's own in its pyproject.toml; a plugin's in its own):

    [project.entry-points."gancli.commands"]
    translate = "gancli.cli.commands:TRANSLATE"

Command modules import nothing heavy at module level (no torch, no Hydra): `gan --help` loads them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    help: str  # one line for `gan --help`, ideally with an example
    main: Callable[[list[str] | None], int]  # runs the command's Hydra app on argv; returns the exit code
    order: int = 100  # position in `gan --help` (then by name)
