"""What values every config key takes: the one table of value rules (torch-free, below every layer that checks them), checked on the composed config before
any work (`gan train`, `gan sample`, `gan eval`, and `build_trainer` for in-process runs), and shown by
`gan train --help`.

Types of the fixed-shape groups are also checked by Hydra through the dataclasses in `gancli/cli/schema.py`; these
rules add ranges and sets, apply to the groups whose keys vary by option (model, loss, optimizer,
dataset) wherever the key exists, and state cross-key rules. A broken rule is one paragraph naming the
key, the value given and what is allowed, with exit code 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from gancli.errors import GanError


@dataclass(frozen=True)
class Rule:
    key: str                           # dotted path; applies where the composed config has it
    allowed: str                       # what is allowed, in words
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


def number(lo: float | None = None, hi: float | None = None, lo_open=False, hi_open=False,
           null: bool = False) -> tuple[str, Callable]:
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
    return "two numbers in [0, 1), e.g. [0.5, 0.999]", lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(
        _num(b) and 0 <= b < 1 for b in v)


def _rules(spec: dict[str, tuple[str, Callable]]) -> list[Rule]:
    return [Rule(k, text, ok) for k, (text, ok) in spec.items()]


COUNT, POSITIVE, NONNEG_INT, NONNEG = integer(1), number(0, lo_open=True), integer(0), number(0)
PROB = number(0, 1)

TRAIN_RULES = _rules({   # dataset keys first: others interpolate them (trainer.steps: ${dataset.steps})
    "dataset.n": COUNT, "dataset.std": POSITIVE, "dataset.rotation": number(0, 180),
    "dataset.max_memory_mb": COUNT, "dataset.split": one_of("train", "test", "all", "valid"),
    "dataset.layout": one_of("rows14", "flat14", "rows"), "dataset.resize": one_of("lanczos", "avgpool"),
    "dataset.part": one_of("all", "train", "vali", "test"), "dataset.part_seed": integer(0),
    "dataset.steps": COUNT, "dataset.batch_size": COUNT, "dataset.net_width": COUNT,
    "seed": integer(0),
    "trainer.steps": COUNT, "trainer.batch_size": COUNT, "trainer.sample_every": NONNEG_INT,
    "trainer.ckpt_every": NONNEG_INT, "trainer.keep": NONNEG_INT, "trainer.log_every": COUNT,
    "trainer.ema": number(0, 1, lo_open=True, hi_open=True, null=True), "trainer.ema_start": NONNEG_INT,
    "trainer.ema_rampup": number(0, lo_open=True, null=True), "trainer.ema_bn_batches": NONNEG_INT,
    "trainer.num_workers": NONNEG_INT, "trainer.sample_n": COUNT,
    "trainer.amp": one_of("false", "true", "bf16", "fp16", "False", "True"),
    "trainer.tensorboard": one_of("auto", "true", "false", "True", "False"),
    "trainer.progress": one_of("auto", "true", "false", "True", "False"),
    "trainer.nan": one_of("stop", "skip"),
    "trainer.compile": one_of("false", "true", "reduce-overhead", "max-autotune", "False", "True"),
    "optimizer.lr": POSITIVE, "optimizer.lr_d": POSITIVE, "optimizer.d.lr": POSITIVE, "optimizer.betas": betas(), "optimizer.eps": POSITIVE,
    "optimizer.weight_decay": NONNEG, "optimizer.momentum": number(0, 1, hi_open=True),
    "optimizer.alpha": number(0, 1, lo_open=True, hi_open=True), "optimizer.lr_decay_start": PROB,
    "optimizer.lr_schedule": one_of("constant", "linear_decay"),
    "loss.gp_weight": NONNEG, "loss.r1_weight": NONNEG, "loss.r1_every": COUNT,
    "loss.clip": number(0, lo_open=True, null=True),
    "model.z_dim": COUNT, "model.n_critic": COUNT, "model.g_steps": COUNT, "model.noise": one_of("normal", "uniform"),
    "model.g_fakes": one_of("reuse", "fresh"), "model.head_hidden": NONNEG_INT,
    "model.class_weight": NONNEG, "model.generator.width": COUNT, "model.discriminator.width": COUNT,
    "model.generator.max_width": COUNT, "model.discriminator.max_width": COUNT,
    "model.generator.fc": NONNEG_INT, "model.discriminator.fc": NONNEG_INT,
    "model.discriminator.leak": number(0, 1, hi_open=True), "model.discriminator.dropout": number(0, 1, hi_open=True),
    "model.generator.dropout": number(0, 1, hi_open=True), "model.condition.embed_dim": NONNEG_INT,
    "model.generator.init": one_of("tf", "torch"), "model.discriminator.init": one_of("tf", "torch"),
    "model.codes.categorical": NONNEG_INT, "model.codes.continuous": NONNEG_INT,
    "model.codes.cat_weight": NONNEG, "model.codes.cont_weight": NONNEG,
    "model.prior": one_of("normal", "uniform", "mixture", "swiss_roll"), "model.prior_labels": one_of("false", "true", "False", "True"),
    "model.labelled": integer(0, null=True), "model.clusters": integer(2), "model.head_distance": NONNEG,
    "model.head_weight": NONNEG, "model.d_input_noise": NONNEG, "model.encoder.kind": one_of("deterministic", "gaussian"),
    "model.condition.decoder": one_of("none", "onehot"),
    "model.fade_images": COUNT, "model.stable_images": NONNEG_INT, "model.mbstd_group": COUNT,
    "model.drift": NONNEG, "model.gp_weight": NONNEG, "model.width": COUNT, "model.max_width": COUNT,
    "model.w_dim": COUNT, "model.mapping_layers": COUNT, "model.mapping_lr_mul": POSITIVE,
    "model.style_mixing": PROB, "model.r1_gamma": NONNEG, "model.r1_every": COUNT, "model.pl_weight": NONNEG,
    "model.pl_every": COUNT, "model.pl_decay": PROB, "model.pl_batch_shrink": COUNT,
    "tricks.feature_matching": NONNEG, "tricks.label_smoothing": number(0, 1, hi_open=True),
    "tricks.instance_noise": NONNEG, "tricks.minibatch_std": NONNEG_INT, "tricks.pack": COUNT,
    "eval.every": NONNEG_INT, "eval.n": COUNT, "eval.reference_n": COUNT, "eval.kid_subsets": COUNT,
    "eval.kid_subset_size": integer(2), "eval.classifier_epochs": COUNT, "eval.batch_size": COUNT,
    "eval.seed": integer(0), "eval.features": one_of("auto", "inception", "classifier"),
})

SAMPLE_RULES = _rules({
    "n": COUNT, "nrow": COUNT, "batch_size": COUNT, "seed": integer(0),
    "format": one_of("png", "npz", "png_dir", "npy", "csv"),
})

EVAL_RULES = _rules({
    "n": COUNT, "reference_n": COUNT, "kid_subsets": COUNT, "kid_subset_size": integer(2), "classifier_epochs": COUNT,
    "batch_size": COUNT, "seed": integer(0), "features": one_of("auto", "inception", "classifier"),
})


def _image_resolution(cfg: dict) -> str | None:
    r = cfg.get("dataset", {}).get("resolution")
    if r is None or cfg.get("dataset", {}).get("name") in ("ring8", "grid25"):
        return None
    if not (isinstance(r, int) and not isinstance(r, bool)) or r < 8 or r > 1024:
        return f"dataset.resolution={r!r} is not a supported size: an integer from 8 to 1024 (28, 32, 64, 128, ...)."
    return None


def _cross_train(cfg: dict) -> list[str]:
    t, tricks = cfg.get("trainer", {}), cfg.get("tricks", {})
    out = []
    steps, ema_start = t.get("steps"), t.get("ema_start", 0)
    if t.get("ema") is not None and isinstance(steps, int) and isinstance(ema_start, int) and ema_start >= steps:
        out.append(f"trainer.ema_start={ema_start} is not before the last step (trainer.steps={steps}): the EMA would "
                   f"average nothing. Lower trainer.ema_start or set trainer.ema=null.")
    batch, pack, group = t.get("batch_size"), tricks.get("pack", 1), tricks.get("minibatch_std", 0)
    if isinstance(batch, int) and isinstance(pack, int) and pack >= 1 and batch % pack:
        out.append(f"tricks.pack={pack} must divide trainer.batch_size={batch}: D judges packs of {pack} samples.")
    elif isinstance(batch, int) and isinstance(group, int) and group > 0 and isinstance(pack, int) and pack >= 1 \
            and batch % (group * pack):
        out.append(f"tricks.minibatch_std={group} must divide the batch D sees (trainer.batch_size={batch}"
                   f"{f' / tricks.pack={pack}' if pack > 1 else ''}).")
    n = cfg.get("dataset", {}).get("n")
    if isinstance(n, int) and isinstance(batch, int) and batch > n:
        out.append(f"trainer.batch_size={batch} is larger than the dataset (dataset.n={n} samples).")
    res = _image_resolution(cfg)
    if res:
        out.append(res)
    return out


def _get(cfg: dict, dotted: str):
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


_ABSENT = object()
TABLES = {"train": (TRAIN_RULES, _cross_train), "sample": (SAMPLE_RULES, None), "gan_eval": (EVAL_RULES, None)}


def check_values(cfg: dict, config_name: str = "train") -> None:
    """Raise one GanError for the first value that breaks a rule (cfg: the resolved config as plain data)."""
    rules, cross = TABLES.get(config_name, ([], None))
    for rule in rules:
        value = _get(cfg, rule.key)
        if value is not _ABSENT and not rule.ok(value):
            raise GanError(f"{rule.key}={value!r} is not allowed: {rule.key} takes {rule.allowed}.")
    for message in (cross(cfg) if cross else []):
        raise GanError(message)


def rules_text(config_name: str = "train") -> str:
    """The rules, one per line, for --help."""
    rules, _ = TABLES.get(config_name, ([], None))
    return "\n".join(f"{r.key}: {r.allowed}" for r in rules)
