"""Typed schemas for the fixed-shape config nodes: a wrong type fails at composition, before any work.

Model, loss and dataset nodes vary by choice; Hydra's struct mode guards their keys and
the builders check their values. The sample command's keys are the common ones plus every option any
registered family declares (`Algorithm.sample_options`), so `gan sample ckpt=... trunc=0.7` is a typed
key and a typo is caught before the checkpoint is read.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, make_dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TrainerConfig:
    """The trainer's keys and types, and no values: conf/trainer/default.yaml holds the defaults, beside the
    comments that document them and the interpolations (${dataset.steps}) a dataclass cannot hold. A key
    missing there is `???` and fails as an incomplete config; a key missing here fails at composition."""

    steps: int = MISSING
    batch_size: int = MISSING
    sample_every: int = MISSING
    ckpt_every: int = MISSING
    keep: int = MISSING
    log_every: int = MISSING
    device: str = MISSING
    amp: Any = MISSING
    ema: Optional[float] = MISSING
    ema_start: int = MISSING
    ema_rampup: Optional[float] = MISSING
    ema_bn_batches: int = MISSING
    compile: Any = MISSING
    channels_last: bool = MISSING
    num_workers: int = MISSING
    sample_n: int = MISSING
    progress: Any = MISSING
    callbacks: Dict[str, Any] = MISSING
    nan: str = MISSING
    sync_bn: bool = MISSING
    profile: bool = MISSING


@dataclass
class TricksConfig:
    """The tricks' keys and types: conf/tricks/none.yaml holds the values (all off), as for the trainer."""

    feature_matching: float = MISSING
    label_smoothing: float = MISSING
    instance_noise: float = MISSING
    minibatch_std: int = MISSING
    pack: int = MISSING
    diffaugment: List[str] = MISSING


@dataclass
class EvalConfig:
    """How models are scored (gancli.metrics): in `gan eval` at the top level, in `gan train` under `eval`.
    Types only: conf/eval/default.yaml and conf/gan_eval.yaml hold the values, with their comments."""

    metrics: Any = MISSING
    n: int = MISSING
    features: str = MISSING
    reference_n: int = MISSING
    kid_subsets: int = MISSING
    kid_subset_size: int = MISSING
    inception_weights: Optional[str] = MISSING
    cache_dir: str = MISSING
    classifier_epochs: int = MISSING
    batch_size: int = MISSING
    seed: int = MISSING


@dataclass
class TrainEvalConfig(EvalConfig):
    every: int = MISSING
    best: Optional[str] = MISSING
    best_after: int = MISSING


@dataclass
class EvalCommandConfig(EvalConfig):
    ckpt: Optional[str] = MISSING
    samples: Optional[str] = MISSING
    dataset: Any = None  # the config group, when one is chosen: the reference data (default: the checkpoint's)
    out: Optional[str] = MISSING
    device: str = MISSING
    ema: bool = MISSING
    floor: bool = MISSING


@dataclass
class SampleConfig:
    """The keys every family's sampling shares (gancli.commands.sample.COMMON_KEYS); conf/sample.yaml holds
    their values."""

    ckpt: str = MISSING
    n: int = MISSING
    seed: int = MISSING
    nrow: int = MISSING
    out: str = MISSING
    format: str = MISSING
    batch_size: int = MISSING
    device: str = MISSING
    ema: bool = MISSING


def sample_options() -> dict[str, tuple[Any, str, list[str]]]:
    """Every registered family's sampling options (imports the algorithms, torch and the plugins)."""
    from gancli.algorithms.base import sample_option_table

    return sample_option_table()


def sample_options_text() -> str:
    return "\n".join(
        f"{key}=  ({', '.join(users)}) {text}" for key, (_, text, users) in sorted(sample_options().items())
    )


def sample_schema():
    """SampleConfig plus each family option as an optional key (null: not asked for). Options whose name
    a dataclass field cannot take (`class`) or whose type is open (an index or a name) are untyped."""
    from omegaconf import OmegaConf

    options = sample_options()
    typed = [(k, Optional[t], None) for k, (t, _, _) in options.items() if t is not Any and not keyword.iskeyword(k)]
    node = OmegaConf.structured(make_dataclass("SampleSchema", typed, bases=(SampleConfig,)))
    OmegaConf.set_struct(node, False)
    for k, (t, _, _) in options.items():
        if t is Any or keyword.iskeyword(k):
            node[k] = None
    OmegaConf.set_struct(node, True)
    return node


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="_schema", name="trainer", node=TrainerConfig)
    cs.store(group="_schema", name="tricks", node=TricksConfig)
    cs.store(group="_schema", name="train_eval", node=TrainEvalConfig)
    cs.store(group="_schema", name="eval_command", node=EvalCommandConfig)


def register_sample() -> None:
    """The sample command's schema (it needs the algorithms, so only `gan sample` pays for importing them)."""
    from omegaconf import OmegaConf

    ConfigStore.instance().store(group="_schema", name="sample", node=sample_schema())
    if not OmegaConf.has_resolver("gan_sample_options"):
        OmegaConf.register_new_resolver("gan_sample_options", sample_options_text)
