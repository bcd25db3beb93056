"""The package's layers, as data, and a test that they hold.

Networks and losses are plain torch (usable without Lightning, in a notebook or another trainer); LightningModules
hold training logic and read no data or callback code; metrics know neither callbacks nor models; the sweep code
does not import the command line that runs it. Every import counts, at module level or inside a function (a lazy
import is still an arrow), except those under `if TYPE_CHECKING:`, which load nothing. Arrows are followed through
other lit_gan modules: a network importing a helper that imports Lightning breaks the rule as much as importing it
directly, and the failure shows the chain.
"""

import ast
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lit_gan"

LIGHTNING = ("pytorch_lightning", "lightning", "lightning_fabric")
# (layer, what no module of it may import, directly or through other lit_gan modules)
RULES = [
    ("lit_gan.networks", (*LIGHTNING, "lit_gan.models", "lit_gan.data", "lit_gan.callbacks")),
    ("lit_gan.losses", (*LIGHTNING, "lit_gan.models", "lit_gan.data", "lit_gan.callbacks")),
    ("lit_gan.models", ("lit_gan.data", "lit_gan.callbacks")),
    ("lit_gan.metrics", ("lit_gan.callbacks", "lit_gan.models")),
    ("lit_gan.sweep", ("lit_gan.cli", "lit_gan.lightning_cli")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_names(source: str, current: str, is_package: bool = False) -> set[str]:
    """Every module that module `current` (its `source`) imports, anywhere but under `if TYPE_CHECKING:`, with the
    packages that loads."""
    names: set[str] = set()
    package = current if is_package else current.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    parents = {".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 1)}
    return (names | parents) - {current}


IMPORTS = {name: imported_names(path.read_text(), name, path.name == "__init__.py") for name, path in MODULES.items()}


def chains(start: str, stop_at: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every module reachable from `start` through lit_gan modules, with the shortest chain of imports that reaches
    it; modules within `stop_at` are reached but not followed."""
    seen = {start: [start]}
    todo = deque([start])
    while todo:
        current = todo.popleft()
        for name in sorted(IMPORTS.get(current, ())):
            if name not in seen:
                seen[name] = [*seen[current], name]
                if name in MODULES and not any(within(name, s) for s in stop_at):
                    todo.append(name)
    return seen


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """One line per module of `layer` and forbidden package it reaches: the shortest chain of imports."""
    found = []
    for start in MODULES:
        if within(start, layer):
            reached = chains(start, forbidden)
            for f in forbidden:
                hits = [chain for name, chain in reached.items() if within(name, f) and not within(name, layer)]
                if hits:
                    found.append(" -> ".join(min(hits, key=len)))
    return sorted(found)


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[layer for layer, _ in RULES])
def test_layer_imports(layer, forbidden):
    assert layer in MODULES, f"{layer} is not a lit_gan package: update RULES"
    found = violations(layer, forbidden)
    assert not found, f"{layer} must not import {', '.join(forbidden)}:\n" + "\n".join(found)


def test_the_graph_sees_imports():
    """The test above can only hold if it reads the arrows: a few that are known to exist are found."""
    assert "pytorch_lightning" in chains("lit_gan.models.base")
    assert "lit_gan.networks" in chains("lit_gan.models.cut")
    assert any(within(name, "lit_gan.callbacks") for name in chains("lit_gan.lightning_cli"))
    # nested imports count, TYPE_CHECKING ones do not
    source = "def f():\n    from ..data import images\nif TYPE_CHECKING:\n    import lit_gan.callbacks\n"
    names = imported_names(source, "lit_gan.networks.probe")
    assert {"lit_gan.data", "lit_gan.data.images", "lit_gan"} <= names and "lit_gan.callbacks" not in names


def test_plain_torch_layers_load_without_lightning():
    """At run time too: importing the networks and losses loads no Lightning module."""
    code = (
        "import sys, lit_gan.networks, lit_gan.losses, lit_gan.networks.stargan_v2\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {LIGHTNING!r})\n"
        "assert not loaded, loaded[:5]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
