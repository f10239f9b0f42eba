# The two commands of the README: `make demo` and `make test`.
.PHONY: setup demo test lint format bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/act3d demo

test: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/python -m pytest -q
	bash scripts/wheel_check.sh

lint: setup
	.venv/bin/ruff check --fix src tests bench
	.venv/bin/ruff format src tests bench

bench: setup
	.venv/bin/python bench/ops.py
