"""The generic training loop and what it needs: devices, precision, EMA, checkpoints, logs, progress."""
