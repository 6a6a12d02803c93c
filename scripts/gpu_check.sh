#!/usr/bin/env bash
# The GPU check, as one prepared command for a lent CUDA machine that has PyTorch but not gancli's other
# dependencies. Fetch their wheels here first (x86-64, CPython 3.12; pure-Python ones):
#     bash scripts/gpu_check.sh --fetch          # into .whl/ (git-ignored through .git/info/exclude)
# then, on the GPU machine, from the repository root with .whl/ beside it:
#     bash scripts/gpu_check.sh                  # CUDA tests, then the speed benchmark; results in $OUT
# It writes nvidia-smi.txt, tests.txt (tests/test_cuda.py: fast path, compiled = eager, CUDA graphs, NCCL
# and SyncBatchNorm with two GPUs) and speed.md (scripts/bench_speed.py: dcgan and stylegan2 against the
# hand-written loop, default and fast settings), and ends well inside ten minutes.
set -uo pipefail
WHEELS=(hydra-core==1.3.2 omegaconf==2.3.0 pyyaml rich markdown-it-py mdurl pygments)
SDISTS=(antlr4-python3-runtime==4.9.3)   # pure Python, published as a source archive only: built here
if [[ "${1:-}" == "--fetch" ]]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    for w in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl "$w" || exit 1
    done
    for s in "${SDISTS[@]}"; do
        python3 -m pip wheel -q --no-deps -w .whl "$s" || exit 1
    done
    ls .whl
    exit 0
fi
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -c "import torch, hydra, omegaconf, gancli; print(torch.__version__, torch.cuda.get_device_name())" | tee "$OUT/versions.txt" || exit 1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/tests.txt"
timeout 300 python3 scripts/bench_speed.py --models dcgan --batch 64 512 --settings default fast --steps 40 --warmup 10 \
    --out "$OUT/speed.md" 2>&1 | tee "$OUT/speed.log"
timeout 60 python3 scripts/bench_speed.py --models stylegan2 --batch 64 --settings default fast --steps 16 --warmup 4 \
    --out "$OUT/speed_stylegan2.md" 2>&1 | tee "$OUT/speed_stylegan2.log"
