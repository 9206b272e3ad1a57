#!/usr/bin/env bash
# On a GPU machine without network: install the wheels benchmarks/gpu_prepare.sh put in .gpu/
# (only when hydra is missing), then run benchmarks/gpu_check.py on the carried MNIST, writing
# to $OUT (the device tool's output folder) or ./gpu_check. Arguments go to gpu_check.py.
#
# With a tool that copies the checkout to a GPU machine and brings back what lands in $OUT:
# run benchmarks/gpu_prepare.sh in that checkout first, carry .gpu, and run (about 8 minutes,
# so a 600 s limit; the JSON is rewritten after each section, so a cut-short run keeps those)
#   set -o pipefail; bash benchmarks/gpu_check.sh 2>&1 | tee $OUT/gpu_check.log
# A rerun of one part: ... gpu_check.sh --sections speed 2>&1 | tee $OUT/gpu_check.log
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${GPU_CARRY:-.gpu}
PY=${PYTHON:-python3}
if ! "$PY" -c "import hydra, omegaconf" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target /tmp/gan-site "$CARRY"/wheels/*.whl
    export PYTHONPATH=/tmp/gan-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export GAN_DATA_DIR=${GAN_DATA_DIR:-$PWD/$CARRY/data}
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8} PYTHONUNBUFFERED=1
extra=()
if [ -f "$CARRY/MNIST_classifier.pt" ]; then
    extra=(--classifier "$CARRY/MNIST_classifier.pt")
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec "$PY" benchmarks/gpu_check.py --out "${OUT:-gpu_check}" ${extra[@]+"${extra[@]}"} "$@"
