#!/usr/bin/env bash
# Builds the wheel, installs it (not editable) into a throwaway venv that borrows the installed torch,
# and runs `gan` from outside the checkout: proves conf/ ships inside the package.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip wheel -q --no-deps -w "$work/dist" "$repo"
python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install -q --no-deps "$work"/dist/gancli-*.whl
cd "$work"
"$work/venv/bin/python" - <<'PY'
import gancli.cli.app as app, pathlib
d = app.conf_dir()
assert "site-packages" in str(d) and (d / "model" / "dcgan.yaml").is_file(), d
print("conf/ found in the wheel at", d)
PY
"$work/venv/bin/gan" train --cfg job model=wgan_gp | grep -q "gp_weight: 10.0"
"$work/venv/bin/gan" train dataset.n=64 dataset.resolution=16 model.generator.width=8 model.discriminator.width=8 \
  trainer.batch_size=8 trainer.steps=2 logger=none hydra.run.dir="$work/run" >/dev/null
test -f "$work/run/final.png" && test -f "$work/run/checkpoints/last.pt"
"$work/venv/bin/gan" sample ckpt="$work/run/checkpoints/last.pt" n=4 out="$work/s.png" >/dev/null
test -f "$work/s.png"
echo "wheel install OK: gan train / gan sample work outside the checkout"
