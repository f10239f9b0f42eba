#!/usr/bin/env bash
# Build act3d's wheel, install it (not editable) into a new virtual environment whose only act3d is
# that wheel, and run `act3d presets` and a toy-size training run from outside the source tree.
# The new environment borrows the third-party packages of .venv through a plain path entry (its .pth
# files, among them the editable install's, are not processed), so the check takes seconds and needs
# no registry. Run by .ci/run after the test suite; needs .venv (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/pip wheel -q --no-deps --no-build-isolation -w "$tmp/dist" .
wheel=$(ls "$tmp"/dist/act3d-*.whl)
.venv/bin/python - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
presets = [n for n in names if n.startswith("act3d/presets/") and n.endswith(".yaml")]
assert len(presets) >= 20, f"the wheel ships {len(presets)} presets"
print(f"wheel: {len(names)} files, {len(presets)} presets")
PY
"${PYTHON:-python3}" -m venv "$tmp/venv"
deps=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" > "$site/zz-act3d-deps.pth"
"$tmp/venv/bin/pip" install -q --no-deps --no-index "$wheel"
cd "$tmp"
venv/bin/python - "$tmp/venv" <<'PY'
import sys
import act3d
assert act3d.__file__.startswith(sys.argv[1]), f"act3d imported from {act3d.__file__}, not the wheel"
assert not any(p.rstrip("/").endswith("/src") for p in sys.path), sys.path
print(f"act3d {act3d.__version__} from {act3d.__file__}")
PY
venv/bin/act3d presets > presets.txt
grep -qx pretrain_cpu presets.txt
venv/bin/act3d classify --config classify_cpu --no-progress run.output_dir="$tmp/runs" run.name=wheel \
    model.dim=32 model.depth=2 model.num_heads=2 model.num_groups=16 model.group_size=16 \
    data.name=synthetic data.root=null data.npoints=256 data.batch_size=8 "data.options={num_per_class: 2}" \
    train.epochs=1 train.precision=fp32 train.bn_recalibration_batches=2
test -f "$tmp/runs/wheel/results.json"
echo "wheel check: passed"
