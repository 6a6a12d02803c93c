"""`gan encode`: codes of images (or the dataset's split) under a model with an encoder (aae*, ali, bigan)."""

from __future__ import annotations

from gancli.cli.command import Command


def task(cfg) -> None:
    from gancli.encode import encode_from_config

    encode_from_config(cfg)


def main(argv: list[str] | None = None) -> int:
    from gancli.cli.app import guarded, run_app

    return run_app("encode", "gan_encode", guarded(task), argv)


COMMAND = Command("encode images with aae / ali / bigan: gan encode ckpt=<run> input=<folder | npz> out=z.npz", main,
                  order=5)
