"""The layout is the architecture, and docs/architecture.md says what it is.

Every module of the package is named in the document; every room (a package, or a
module on its own) has a floor there; an import never runs up a floor or sideways to
another room of the same floor; and no import circle exists between modules, also
not through an import inside a function.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "exchanged"
DOC = ROOT / "docs" / "architecture.md"
#: test support, kept out of the built package: it may use anything, and only the
#: ``generate`` command (lazily, refusing when it is not installed) uses it
OUTSIDE = "testing"
ALLOWED_INTO_OUTSIDE = {"exchanged.cli.generate"}


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (packages by their own name)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def room(module: str) -> str:
    """``exchanged.batch.pipeline`` -> ``batch``; ``exchanged.errors`` -> ``errors.py``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "exchanged"
    if parts[1] == "__main__":
        return "cli"  # ``python -m exchanged``: the command itself
    if (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return parts[1] + ".py"


def floors() -> dict[str, int]:
    """The floor of each room, from the document's table (``| 4 | `batch/`, `sftp/` | ...``)."""
    out = {"exchanged": 0}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if m:
            for name in re.findall(r"`([^`]+)`", m[2]):
                out[name.rstrip("/")] = int(m[1])
    return out


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """The package's modules that ``module`` imports, anywhere in it (functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "exchanged":
                    yield _known(alias.name, known), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "exchanged":
                continue
            for alias in node.names:
                # ``from exchanged.sftp import openssh`` imports a module, not a name
                sub = f"{base}.{alias.name}"
                yield (sub if sub in known else _known(base, known)), node.lineno


def _known(name: str, known: dict[str, Path]) -> str:
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def graph() -> dict[str, dict[str, int]]:
    known = modules()
    out: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        edges: dict[str, int] = {}
        for target, line in imports(module, path, known):
            if target != module:
                edges.setdefault(target, line)
        out[module] = edges
    return out


def test_every_module_is_in_the_architecture_document() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [str(path.relative_to(PACKAGE)) for path in modules().values()
               if path.name != "__init__.py" and f"`{path.relative_to(PACKAGE)}`" not in text]
    assert not missing, f"modules not in docs/architecture.md: {', '.join(missing)}"


def test_every_room_has_a_floor() -> None:
    known = floors()
    rooms = {room(m) for m in modules()} - {OUTSIDE}
    assert rooms - set(known) == set(), f"rooms without a floor: {sorted(rooms - set(known))}"


def test_no_import_runs_up_a_floor_or_sideways() -> None:
    level = floors()
    wrong = []
    for module, edges in graph().items():
        here = room(module)
        for target, line in edges.items():
            there = room(target)
            if here == there or here == OUTSIDE:
                continue
            if there == OUTSIDE:
                if module not in ALLOWED_INTO_OUTSIDE:
                    wrong.append(f"{module}:{line} imports test support {target}")
                continue
            if level[there] >= level[here] and there != "exchanged":
                wrong.append(f"{module}:{line} (floor {level[here]}) imports {target} "
                             f"(floor {level[there]})")
    assert not wrong, "imports against the floors:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    edges = graph()
    circles = [c for c in _strongly_connected(edges) if len(c) > 1]
    assert not circles, "import circles: " + "; ".join(" -> ".join(sorted(c)) for c in circles)


def _strongly_connected(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (no recursion limit on a long chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges.get(start, {})))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, {}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found


def test_a_circle_is_found() -> None:
    """The check itself can fail."""
    edges = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert [sorted(c) for c in _strongly_connected(edges) if len(c) > 1] == [["a", "b", "c"]]
