"""What values config keys take, checked on the composed config before any work (`gan train`, `gan sample`,
`gan eval`, and `build_trainer` for in-process runs) and shown by `gan train --help`.

This module holds the rule vocabulary (`integer`, `number`, `one_of`, ...), the checker, and the rules of
keys no family owns (trainer, optimizer, loss, eval; the sample and eval commands'). A family, a network
and a dataset declare the rules of their own keys beside their code (`config_rules`), and
`gancli.algorithms.config_rules` gathers those of the composed config. Types of the fixed-shape groups
are also checked by Hydra through the dataclasses in `gancli/cli/schema.py`. A broken rule is one
paragraph naming the key, the value given and what is allowed, with exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gancli.core.errors import GanError


@dataclass(frozen=True)
class Rule:
    key: str  # dotted path; applies where the composed config has it
    allowed: str  # what is allowed, in words
    ok: Callable[[Any], bool]


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int | None = None, hi: int | None = None, null: bool = False) -> tuple[str, Callable]:
    parts = ["an integer"] + ([f"≥ {lo}"] if lo is not None else []) + ([f"≤ {hi}"] if hi is not None else [])
    text = " ".join(parts) + (" (or null)" if null else "")

    def ok(v):
        if v is None:
            return null
        return isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) and (hi is None or v <= hi)

    return text, ok


def number(
    lo: float | None = None, hi: float | None = None, lo_open=False, hi_open=False, null: bool = False
) -> tuple[str, Callable]:
    left = "" if lo is None else f"{'>' if lo_open else '≥'} {lo:g}"
    right = "" if hi is None else f"{'<' if hi_open else '≤'} {hi:g}"
    if lo is not None and hi is not None:
        text = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    else:
        text = " ".join(p for p in ("a number", left, right) if p)
    text += " (or null)" if null else ""

    def ok(v):
        if v is None:
            return null
        if not _num(v):
            return False
        return (lo is None or (v > lo if lo_open else v >= lo)) and (hi is None or (v < hi if hi_open else v <= hi))

    return text, ok


def one_of(*choices) -> tuple[str, Callable]:
    return "one of: " + ", ".join(str(c) for c in choices), lambda v: str(v) in {str(c) for c in choices}


def betas() -> tuple[str, Callable]:
    return (
        "two numbers in [0, 1), e.g. [0.5, 0.999]",
        lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(b) and 0 <= b < 1 for b in v),
    )


def rules(spec: dict[str, tuple[str, Callable]], prefix: str = "") -> list[Rule]:
    """An owner's `config_rules` ({key: rule}, keys relative to its config node) as Rules under `prefix`."""
    return [Rule(prefix + k, text, ok) for k, (text, ok) in spec.items()]


COUNT, POSITIVE, NONNEG_INT, NONNEG = integer(1), number(0, lo_open=True), integer(0), number(0)
PROB = number(0, 1)

# The keys of no family, dataset or network: the loop, the optimizer and loss groups, evaluation. The owners
# of the other keys declare theirs beside their code (`config_rules` on a family, a network or a dataset
# builder) and `gancli.algorithms.config_rules` gathers them for the composed config.
TRAIN_RULES = rules(
    {
        "seed": integer(0),
        "trainer.steps": COUNT,
        "trainer.batch_size": COUNT,
        "trainer.sample_every": NONNEG_INT,
        "trainer.ckpt_every": NONNEG_INT,
        "trainer.keep": NONNEG_INT,
        "trainer.log_every": COUNT,
        "trainer.ema": number(0, 1, lo_open=True, hi_open=True, null=True),
        "trainer.ema_start": NONNEG_INT,
        "trainer.ema_rampup": number(0, lo_open=True, null=True),
        "trainer.ema_bn_batches": NONNEG_INT,
        "trainer.num_workers": NONNEG_INT,
        "trainer.sample_n": COUNT,
        "trainer.amp": one_of("false", "true", "bf16", "fp16", "False", "True"),
        "trainer.progress": one_of("auto", "true", "false", "True", "False"),
        "trainer.nan": one_of("stop", "skip"),
        "trainer.compile": one_of("false", "true", "reduce-overhead", "max-autotune", "False", "True"),
        "optimizer.lr": POSITIVE,
        "optimizer.lr_d": POSITIVE,
        "optimizer.d.lr": POSITIVE,
        "optimizer.betas": betas(),
        "optimizer.eps": POSITIVE,
        "optimizer.weight_decay": NONNEG,
        "optimizer.momentum": number(0, 1, hi_open=True),
        "optimizer.alpha": number(0, 1, lo_open=True, hi_open=True),
        "optimizer.lr_decay_start": PROB,
        "optimizer.lr_schedule": one_of("constant", "linear_decay", "exp_decay"),
        "optimizer.lr_final": PROB,
        "optimizer.clip_norm": number(0, lo_open=True, null=True),
        "loss.gp_weight": NONNEG,
        "loss.r1_weight": NONNEG,
        "loss.r1_every": COUNT,
        "loss.clip": number(0, lo_open=True, null=True),
        "eval.every": NONNEG_INT,
        "eval.best_after": NONNEG_INT,
        "eval.n": COUNT,
        "eval.reference_n": COUNT,
        "eval.kid_subsets": COUNT,
        "eval.kid_subset_size": integer(2),
        "eval.classifier_epochs": COUNT,
        "eval.batch_size": COUNT,
        "eval.seed": integer(0),
        "eval.features": one_of("auto", "inception", "classifier"),
    }
)

SAMPLE_RULES = rules(
    {
        "n": COUNT,
        "nrow": COUNT,
        "batch_size": COUNT,
        "seed": integer(0),
        "format": one_of("png", "npz", "png_dir", "npy", "csv"),
    }
)

EVAL_RULES = rules(
    {
        "n": COUNT,
        "reference_n": COUNT,
        "kid_subsets": COUNT,
        "kid_subset_size": integer(2),
        "classifier_epochs": COUNT,
        "batch_size": COUNT,
        "seed": integer(0),
        "features": one_of("auto", "inception", "classifier"),
    }
)

EXPORT_RULES = rules(
    {
        "format": one_of("torchscript", "onnx"),
        "ema": ("true or false", lambda v: isinstance(v, bool)),
        "level": integer(0, null=True),
        "trunc_cutoff": integer(1, null=True),
        "direction": ("AtoB or BtoA (or null)", lambda v: v is None or v in ("AtoB", "BtoA")),
        "dropout": ("true or false (or null: the family's default)", lambda v: v is None or isinstance(v, bool)),
    }
)


def loop_checks(cfg: dict) -> list[str]:
    t = cfg.get("trainer", {})
    steps, ema_start = t.get("steps"), t.get("ema_start", 0)
    if t.get("ema") is not None and isinstance(steps, int) and isinstance(ema_start, int) and ema_start >= steps:
        return [
            f"trainer.ema_start={ema_start} is not before the last step (trainer.steps={steps}): the EMA would "
            f"average nothing. Lower trainer.ema_start or set trainer.ema=null."
        ]
    return []


def _get(cfg: dict, dotted: str):
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


_ABSENT = object()
# The other commands' tables; `gan train`'s rules are gathered with their owners' (gancli.algorithms.config_rules).
TABLES = {"sample": SAMPLE_RULES, "gan_eval": EVAL_RULES, "gan_export": EXPORT_RULES}


def check(cfg: dict, table: list[Rule], messages: list[str] = ()) -> None:
    """Raise one GanError for the first value that breaks a rule, then for the first cross-key message."""
    for rule in table:
        value = _get(cfg, rule.key)
        if value is not _ABSENT and not rule.ok(value):
            raise GanError(f"{rule.key}={value!r} is not allowed: {rule.key} takes {rule.allowed}.")
    for message in messages:
        raise GanError(message)


def check_values(cfg: dict, config_name: str) -> None:
    """A command's own rules (cfg: the resolved config as plain data)."""
    check(cfg, TABLES.get(config_name, []))


def describe(table: list[Rule]) -> str:
    """Rules, one per line, for --help."""
    return "\n".join(f"{r.key}: {r.allowed}" for r in table)


def rules_text(config_name: str) -> str:
    return describe(TABLES.get(config_name, []))
