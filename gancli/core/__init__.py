"""The lowest layer: pieces that both the trainer and the algorithms use (mixed precision, on-device
scalar sums). Nothing here imports from the rest of gancli except `errors` and `registry`, so every
import in the package runs one way: cli → training / sampling → algorithms → nets, losses, data, viz → core.
"""
