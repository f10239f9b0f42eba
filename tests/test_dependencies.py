"""Dependencies point one way (docs/architecture.md): a layer imports only the layers listed for it."""

from __future__ import annotations

import ast
from pathlib import Path

import act3d

PACKAGE = Path(act3d.__file__).parent
BASE = {"errors", "util"}
ALLOWED = {
    "errors": set(),
    "util": BASE,
    "presets": set(),
    "ops": BASE | {"ops"},
    "data": BASE | {"ops", "data"},
    "models": BASE | {"ops", "models"},
    "objectives": BASE | {"ops", "models", "objectives"},
    "engine": BASE | {"ops", "engine"},
    "viz": BASE,
    "api": BASE | {"models"},
    "tasks": BASE | {"ops", "data", "models", "objectives", "engine", "viz", "tasks"},
    "cli": BASE | {"presets", "tasks", "engine"},
}


def imported_layers(path: Path) -> set[str]:
    """The act3d layers (first component after ``act3d.``) a module imports, at any depth of the file."""
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("act3d."):
            layers.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            layers |= {a.name.split(".")[1] for a in node.names if a.name.startswith("act3d.")}
    return layers


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_module_imports_only_the_layers_below_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue  # the package root re-exports the public API lazily
        extra = imported_layers(path) - ALLOWED[layer_of(path)]
        if extra:
            wrong.append(f"{path.relative_to(PACKAGE)} imports {sorted(extra)}")
    assert not wrong, "\n".join(wrong)


def test_the_check_fires_on_an_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from act3d.tasks.runner import train_task\n")
    assert imported_layers(module) - ALLOWED["models"] == {"tasks"}
