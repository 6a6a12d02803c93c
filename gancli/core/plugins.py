"""Families from outside the package: installed distributions extend gancli through entry points.

A plugin is any installed package that declares, in its own pyproject.toml,

    [project.entry-points."gancli.core.plugins"]
    my_family = "my_family"             # a module (imported) or "module:function" (imported, then called)

Importing it runs its `@ALGORITHMS.register(...)`, `@DATASETS.register(...)`, ... decorators, and a `conf/`
folder beside that module joins Hydra's search path, so its presets (`conf/model/my_gan.yaml`, ...)
compose like gancli's own: `gan train model=my_gan`. Commands come the same way, through the group
`gancli.commands` (see `gancli.cli.main`).

This module imports no torch: the search path is found from the package's location, without running it,
so `gan train --help` and config errors stay fast. The modules themselves load on the first look-up a
registry cannot answer (see `Registry.get`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
from pathlib import Path

from gancli.core.errors import GanError

PLUGIN_GROUP = "gancli.core.plugins"
COMMAND_GROUP = "gancli.commands"

log = logging.getLogger("gancli")
_loaded: set[str] = set()


def entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of a group, in a stable order (one per name: the first found wins)."""
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=group):
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def load_plugins() -> list[str]:
    """Import every plugin not imported yet; returns the names loaded by this call. A plugin that fails
    to import is one GanError naming it (a broken plugin must not look like an unknown preset)."""
    new = []
    for ep in entry_points(PLUGIN_GROUP):
        if ep.name in _loaded:
            continue
        _loaded.add(ep.name)
        try:
            obj = ep.load()
            if callable(obj):
                obj()
        except Exception as exc:
            raise GanError(
                f"the gancli plugin '{ep.name}' ({ep.value}, from the package that installed it) failed "
                f"to load: {type(exc).__name__}: {exc}. Fix or uninstall that package."
            ) from exc
        new.append(ep.name)
    return new


def plugin_conf_dirs() -> list[str]:
    """Hydra search-path entries (file://...) for the conf/ folder beside each plugin's module."""
    dirs = []
    for ep in entry_points(PLUGIN_GROUP):
        module = ep.value.split(":", 1)[0].strip()
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            continue
        conf = Path(spec.origin).parent / "conf"
        if conf.is_dir():
            dirs.append(f"file://{conf.resolve()}")
    return dirs


def reset() -> None:
    """Forget what was loaded and rescan installed metadata (tests that install a plugin on the fly)."""
    _loaded.clear()
    importlib.invalidate_caches()
