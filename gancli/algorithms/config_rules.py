"""The value rules of a `gan train` config, gathered from their owners: the loop's, optimizer's, loss's and
evaluation's (`gancli.core.rules`), the dataset's (`gancli.data.base.dataset_rules`), the family's
(`Algorithm.config_rules` along its parents, with `config_checks` for rules between keys) and its
networks' (`config_rules` of the generator and discriminator archs). Nothing here knows a key itself."""

from __future__ import annotations

from gancli.algorithms.base import ALGORITHMS
from gancli.core.rules import TRAIN_RULES, Rule, check, describe, loop_checks, rules
from gancli.data.base import DATASET_RULES, DATASETS, dataset_checks, dataset_rules
from gancli.nets.builders import DISCRIMINATORS, GENERATORS

NET_ROLES = (("model.generator.", GENERATORS), ("model.discriminator.", DISCRIMINATORS))


def _nets(model: dict) -> list[Rule]:
    out = []
    for prefix, table in NET_ROLES:
        arch = (model.get(prefix.split(".")[1]) or {}).get("arch") if isinstance(model, dict) else None
        if isinstance(arch, str) and arch in table:
            out += rules(getattr(table.get(arch), "config_rules", {}), prefix)
    return out


def _family(cfg: dict):
    """The family class `model.algorithm` names (None when the config names none)."""
    model = cfg.get("model", {})
    return ALGORITHMS.get(model["algorithm"]) if "algorithm" in model else None


def train_rules(cfg: dict | None = None) -> list[Rule]:
    """The rules that apply to `cfg` (resolved, plain data): its family's, networks' and dataset's beside
    the loop's. Without cfg: every owner's, first one per key (for --help and the tests)."""
    if cfg is None:
        found = [*TRAIN_RULES, *rules(DATASET_RULES, "dataset.")]
        for _, family in ALGORITHMS.items():
            found += rules(family.all_config_rules())
        for prefix, table in NET_ROLES:
            for _, net in table.items():
                found += rules(getattr(net, "config_rules", {}), prefix)
        for name, _ in DATASETS.items():
            found += rules(dataset_rules(name), "dataset.")
        seen: set[str] = set()
        return [r for r in found if not (r.key in seen or seen.add(r.key))]
    model, data, family = cfg.get("model", {}), cfg.get("dataset", {}), _family(cfg)
    return [
        *(rules(dataset_rules(data["name"]), "dataset.") if "name" in data else []),
        *TRAIN_RULES,
        *(rules(family.all_config_rules()) if family else []),
        *_nets(model),
    ]


def check_train_config(cfg: dict) -> None:
    """One GanError for the first broken rule of `cfg`, before any work."""
    family = _family(cfg)
    check(
        cfg, train_rules(cfg), [*loop_checks(cfg), *(family.config_checks(cfg) if family else []), *dataset_checks(cfg)]
    )


def train_rules_text() -> str:
    return describe(train_rules())
