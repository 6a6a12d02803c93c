"""What a trained model is used for: `gan sample`, `gan eval`, `gan encode`, `gan translate` and
`gan report`. Each reads a checkpoint (or a run dir) and never imports the training package."""
