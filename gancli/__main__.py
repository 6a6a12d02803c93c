"""`python -m gancli train ...` — the same dispatcher as the `gan` script (torchrun uses this form)."""

from gancli.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
