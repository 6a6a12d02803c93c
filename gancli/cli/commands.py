"""The `gan` commands that use a trained model: each is a Hydra app over its own config file that hands
the composed config to its runner in `gancli.commands`. One table, so a new one is a row (and its two
entry points in pyproject.toml), not another copy of the same shim."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from gancli.cli.command import Command


def _app(name: str, config_name: str, runner: str, schemas: str | None = None) -> Callable[[list[str] | None], int]:
    """`gan <name>`'s main: runner and schemas are 'module:function' paths, imported only when it runs
    (so `gan --help`, which loads every Command, imports no torch)."""

    def load(path: str) -> Callable:
        module, function = path.split(":")
        return getattr(importlib.import_module(module), function)

    def task(cfg) -> None:
        load(runner)(cfg)

    def main(argv: list[str] | None = None) -> int:
        from gancli.cli.app import guarded, run_app

        return run_app(name, config_name, guarded(task), argv, schemas=load(schemas) if schemas else None)

    return main


sample = _app("sample", "sample", "gancli.commands.sample:sample_from_config", "gancli.cli.schema:register_sample")
evaluate = _app("eval", "gan_eval", "gancli.commands.evaluate:eval_from_config")
report = _app("report", "gan_report", "gancli.commands.report:report_from_config")
translate = _app("translate", "gan_translate", "gancli.commands.translate:translate_from_config")
encode = _app("encode", "gan_encode", "gancli.commands.encode:encode_from_config")
export = _app("export", "gan_export", "gancli.commands.export:export_from_config")

SAMPLE = Command("draw samples from a checkpoint: gan sample ckpt=<run>/checkpoints/last.pt", sample, order=1)
EVAL = Command(
    "score a checkpoint or samples: gan eval ckpt=<run>/checkpoints/last.pt metrics=[fid,kid,pr]", evaluate, order=2
)
REPORT = Command("a static HTML report of a run or a sweep: gan report run=<run or sweep dir>", report, order=3)
TRANSLATE = Command(
    "translate images with pix2pix or cyclegan: gan translate ckpt=<run> input=<folder> out=<folder>",
    translate,
    order=4,
)
ENCODE = Command(
    "encode images with aae / ali / bigan: gan encode ckpt=<run> input=<folder | npz> out=z.npz", encode, order=5
)
EXPORT = Command(
    "a generator as a file that runs without gancli: gan export ckpt=<run> format=onnx out=g.onnx",
    export,
    order=6,
)
