#!/usr/bin/env bash
# Run here (network, this checkout's venv) before borrowing a GPU machine that has torch and
# Lightning but no hydra-core/omegaconf and no network: fills .gpu/ (git-ignored) with what
# benchmarks/gpu_check.sh needs there. About 3 MB; the device tool's `carry` takes it along.
#   .gpu/wheels/   hydra-core, omegaconf, antlr4-python3-runtime (pure Python), the versions
#                  this venv runs with
#   .gpu/data/     real MNIST (the .gz IDX files) from GAN_DATA_DIR or ../shared/data
#   .gpu/MNIST_classifier.pt  the metrics classifier, if this checkout has trained one
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${GAN_DATA_DIR:-../shared/data}
CARRY=.gpu
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }

rm -rf "$CARRY/wheels" "$CARRY/data"
mkdir -p "$CARRY/wheels" "$CARRY/data/MNIST/raw"
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$CARRY/wheels" \
    "hydra-core==$(version hydra-core)" "omegaconf==$(version omegaconf)"
# omegaconf pins antlr4-python3-runtime 4.9.*, which PyPI has as a source archive only: build
# its (pure Python) wheel here, since the GPU machine cannot fetch the build tools.
"$PY" -m pip wheel -q --no-deps -w "$CARRY/wheels" \
    "antlr4-python3-runtime==$(version antlr4-python3-runtime)"
install -m 644 "$DATA"/MNIST/raw/*-ubyte.gz "$CARRY/data/MNIST/raw/"
if [ -f outputs/classifier/MNIST_classifier.pt ]; then
    install -m 644 outputs/classifier/MNIST_classifier.pt "$CARRY/"
fi
ls -l "$CARRY"/wheels "$CARRY"/data/MNIST/raw
du -sh "$CARRY"
