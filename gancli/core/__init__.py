"""The lowest layer: what every other part needs and nothing of theirs. Errors, registries and plugins,
the value rules checked before any work, device selection, safe checkpoint files, mixed precision,
on-device scalar sums. Nothing here imports the rest of gancli, so imports run one way:
cli → commands, training → algorithms, metrics → nets, losses, data, viz → core.
"""
