#!/usr/bin/env bash
# Download, on a machine that reaches PyPI, the wheels the GPU machine lacks (it has torch, timm,
# numpy, h5py, ... but no pydantic or trimesh, and reaches no registry) into wheels/ (git-ignored).
# The GPU run then carries them: see docs/gpu.md. Python 3.12, manylinux x86_64, binary wheels only.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
[ -x "$PIP" ] || PIP="python3 -m pip"
PY_VERSION=${GPU_PYTHON_VERSION:-3.12}
mkdir -p wheels
rm -f wheels/*.whl  # one version of each package: bench/gpu.py installs every wheel here
# Dependencies are resolved for the target interpreter, so pydantic-core, annotated-types,
# typing-extensions and typing-inspection come along; trimesh's only hard dependency is numpy,
# which the GPU machine has (--no-deps keeps a second numpy out of wheels/).
$PIP download -q --dest wheels --python-version "$PY_VERSION" --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --implementation cp "pydantic>=2.5,<3"
$PIP download -q --dest wheels --python-version "$PY_VERSION" --only-binary=:all: \
    --platform manylinux2014_x86_64 --implementation cp --no-deps "trimesh>=4.0"
ls -l wheels/*.whl
du -ch wheels/*.whl | tail -n 1
