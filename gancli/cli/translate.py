"""`gan translate`: apply a translation model (pix2pix, cyclegan) to images."""

from __future__ import annotations

from gancli.cli.command import Command


def task(cfg) -> None:
    from gancli.translate import translate_from_config

    translate_from_config(cfg)


def main(argv: list[str] | None = None) -> int:
    from gancli.cli.app import guarded, run_app

    return run_app("translate", "gan_translate", guarded(task), argv)


COMMAND = Command("translate images with pix2pix or cyclegan: gan translate ckpt=<run> input=<folder> out=<folder>", main,
                  order=4)
