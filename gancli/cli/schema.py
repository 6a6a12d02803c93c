"""Typed schemas for the fixed-shape config nodes: a wrong type fails at composition, before any work.

Model, loss and dataset nodes vary by choice; Hydra's struct mode guards their keys and
the builders check their values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class TrainerConfig:
    steps: int = 2000
    batch_size: int = 64
    sample_every: int = 500
    ckpt_every: int = 1000
    keep: int = 3
    log_every: int = 50
    device: str = "auto"
    amp: Any = False
    ema: Optional[float] = None
    ema_start: int = 0
    ema_rampup: Optional[float] = None
    ema_bn_batches: int = 16
    compile: bool = False
    channels_last: bool = False
    num_workers: int = 2
    sample_n: int = 64
    tensorboard: Any = "auto"
    progress: Any = "auto"


@dataclass
class TricksConfig:
    feature_matching: float = 0.0
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    minibatch_std: int = 0
    pack: int = 1
    diffaugment: List[str] = field(default_factory=list)


@dataclass
class SampleConfig:
    ckpt: str = "???"
    n: int = 64
    seed: int = 0
    nrow: int = 8
    out: str = "samples.png"
    format: str = "png"
    interpolate: bool = False
    traverse: Optional[str] = None
    batch_size: int = 256
    device: str = "auto"
    ema: bool = True


def sample_schema():
    """SampleConfig plus `class` (the key users type, which a dataclass field cannot be named): an
    untyped key, since it takes an index, a class name or `all`."""
    from omegaconf import OmegaConf

    node = OmegaConf.structured(SampleConfig)
    OmegaConf.set_struct(node, False)
    node["class"] = None
    OmegaConf.set_struct(node, True)
    return node


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="_schema", name="trainer", node=TrainerConfig)
    cs.store(group="_schema", name="tricks", node=TricksConfig)
    cs.store(group="_schema", name="sample", node=sample_schema())
