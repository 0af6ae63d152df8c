"""The architecture, checked from the source (issue 26): every import of every module (at the top
or inside a function; annotation-only imports under ``if TYPE_CHECKING:`` aside) goes to the
module's own layer or one below it, and no modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import noiseda

SRC = Path(noiseda.__file__).parent

# Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS = [
    ("noiseda", "noiseda.errors", "noiseda.registry", "noiseda.typed", "noiseda.device"),  # plumbing
    ("noiseda.nets", "noiseda.degrade"),  # restoration nets, degradations
    ("noiseda.data",),  # files, pairs, decoded stores, sample streams
    ("noiseda.inference",),  # exported restorers, tiled restoring, photos
    ("noiseda.evaluation",),  # metrics, statistics, plots, reports
    ("noiseda.methods",),  # adaptation methods and their training-only nets
    ("noiseda.config",),  # the typed config (it checks names against the registries)
    ("noiseda.training",),  # the loop and everything a run writes
    ("noiseda.experiments", "noiseda.diagnostics"),  # many runs; readings of noise-da
    ("noiseda.demo",),
    ("noiseda.cli", "noiseda.__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, layer = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, layer = len(p), i
    assert layer is not None, f"{module} is in no layer: add it to LAYERS"
    return layer


def _annotation_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, module: str) -> set[str]:
    """The noiseda modules ``path`` imports (``from noiseda.x import y`` counts as noiseda.x.y
    when y is a module, else noiseda.x)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _annotation_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "noiseda")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")[: -node.level] if not path.name == "__init__.py" else module.split(".")
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            if base.split(".")[0] == "noiseda":
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if (SRC.parent / Path(*sub.split("."))).with_suffix(".py").is_file()
                              or (SRC.parent / Path(*sub.split("."))).is_dir() else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(module)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p, module_name(p)) for p in sorted(SRC.rglob("*.py"))}


def test_every_import_goes_to_the_same_layer_or_below():
    upward = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
              for m, deps in graph().items() for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_no_modules_import_each_other_in_a_circle():
    g = graph()
    circles, state = [], {}

    def walk(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for d in sorted(g.get(m, ())):
            if state.get(d) == "open":
                circles.append(" -> ".join(stack[stack.index(d):] + [m, d]) if d in stack else f"{m} -> {d}")
            elif d not in state:
                walk(d, stack + [m])
        state[m] = "done"

    for m in g:
        if m not in state:
            walk(m, [])
    assert not circles, "\n".join(circles)


def test_the_checks_see_imports_inside_functions_and_skip_annotation_only_ones(tmp_path):
    src = tmp_path / "noiseda" / "nets" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from noiseda.config import Config\n"
                   "def f():\n    from noiseda.training.loop import train\n")
    import test_layers

    old = test_layers.SRC
    test_layers.SRC = tmp_path / "noiseda"
    try:
        assert imports_of(src, "noiseda.nets.x") == {"noiseda.training.loop"}
    finally:
        test_layers.SRC = old
