"""The product's import graph: layered, top to bottom, with no circle and no upward import.

Every import of every module of plugin/ and pipework_wrapper/ counts: top-level ones,
those inside functions (deferred for speed) and those under TYPE_CHECKING (a type is a
dependency too). Within one layer imports may go either way, but never round a circle.
`python -m tests.unit.test_layers` prints the graph that docs/architecture.md shows.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("plugin", "pipework_wrapper")

# Top to bottom; a module belongs to the first layer one of whose prefixes it has.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("front-ends", ("plugin.frontends",)),
    ("ops", ("plugin.ops",)),
    ("core", ("plugin.core",)),
    ("config", ("plugin.config",)),
    ("ipam and policy types", ("plugin.ipam", "plugin.policy")),
    ("leaves", ("plugin",)),
    ("pipework_wrapper", ("pipework_wrapper",)),
)


def module_files() -> dict[str, Path]:
    """Every product module by dotted name (a package by its own name, for __init__.py)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The product modules `module` imports, wherever in the file the import is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                # `from plugin import names` imports the module plugin.names.
                named.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    edges = set()
    for name in named:
        while name and name not in known:  # `import a.b.c` of a name inside a module
            name = name.rpartition(".")[0]
        if name and name != module:
            edges.add(name)
    return edges


def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {module: imports_of(module, path, known) for module, path in files.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    return [f"{source} ({LAYERS[layer_of(source)][0]}) -> {target} "
            f"({LAYERS[layer_of(target)][0]})"
            for source in sorted(edges) for target in sorted(edges[source])
            if layer_of(target) < layer_of(source)]


def test_every_module_is_in_a_layer() -> None:
    assert len(module_files()) > 50  # the walk found the tree
    for module in module_files():
        layer_of(module)


def test_the_walk_sees_deferred_and_type_checking_imports() -> None:
    edges = graph()
    # exec_cli imports the core inside its command functions (kept off status's path).
    assert "plugin.core.policy" in edges["plugin.frontends.exec_cli"]
    assert "plugin.names" in edges["plugin.ipam.addresses"]  # `from plugin import names`


def test_the_checks_catch_a_circle_and_an_upward_import() -> None:
    edges = {"plugin.names": {"plugin.ipam.model"}, "plugin.ipam.model": {"plugin.names"},
             "plugin.config.schema": {"plugin.core.policy"}, "plugin.core.policy": set()}
    assert circles(edges) == [["plugin.ipam.model", "plugin.names"]]
    assert upward(edges) == [
        "plugin.config.schema (config) -> plugin.core.policy (core)",
        "plugin.names (leaves) -> plugin.ipam.model (ipam and policy types)"]


def test_no_import_circle() -> None:
    found = circles(graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_upward_import() -> None:
    found = upward(graph())
    assert not found, "imports pointing up the layers:\n" + "\n".join(found)


def layer_text(edges: dict[str, set[str]]) -> str:
    """The layers top to bottom: for each, the layers its modules import, and its files by
    folder. docs/architecture.md shows this text; a test holds the two together."""
    files = module_files()
    lines = []
    for index, (title, _) in enumerate(LAYERS):
        members = [m for m in edges if layer_of(m) == index]
        below = sorted({layer_of(t) for m in members for t in edges[m]} - {index})
        lines.append(f"{title}  ->  " + (", ".join(LAYERS[i][0] for i in below) or "nothing"))
        folders: dict[str, list[str]] = {}
        for module in members:
            path = files[module].relative_to(ROOT)
            folders.setdefault(f"{path.parent}/", []).append(path.stem)
        for folder, stems in sorted(folders.items()):
            lines.extend(_wrapped(f"    {folder:<25}", sorted(stems)))
    return "\n".join(lines)


def _wrapped(head: str, words: list[str], width: int = 92) -> list[str]:
    lines, line = [], head
    for word in words:
        if len(line) + len(word) + 1 > width and line.strip() != head.strip():
            lines.append(line.rstrip())
            line = " " * len(head)
        line += word + " "
    return lines + [line.rstrip()]


def test_the_architecture_document_draws_this_graph() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    drawn = layer_text(graph())
    assert drawn in text, (
        "docs/architecture.md no longer draws the import graph: run "
        "`python -m tests.unit.test_layers --write`, or paste its output into the layers block:\n" + drawn)


def write_document() -> None:
    """Replace the layers block of docs/architecture.md (the first fenced block after
    its "## The layers" heading) with the graph the code has."""
    path = ROOT / "docs" / "architecture.md"
    text = path.read_text()
    start = text.index("```\n", text.index("## The layers")) + 4
    end = text.index("```", start)
    path.write_text(text[:start] + layer_text(graph()) + "\n" + text[end:])


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        write_document()
    else:
        print(layer_text(graph()))
