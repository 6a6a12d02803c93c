"""The `gan` command line: a torch-free dispatcher plus one Hydra app per subcommand."""
