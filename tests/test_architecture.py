"""The rooms' import rules (docs/ARCHITECTURE.md, "Rooms"), checked on the source itself:
a rule that only lives in a document drifts."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "job" / "minescan"
SHARED_FACTS = {"errors", "log", "storage", "validation", "bands", "ores", "points", "__init__"}
#: modules of a forbidden room that are contracts every room may read (value objects, no I/O)
CONTRACTS = {"batch.manifest", "batch.grid"}
#: room → rooms (or shared facts) it must never import
FORBIDDEN = {
    "scan": {"batch", "acquire", "sites", "training", "cli", "synth", "series", "registry"},
    "models": {"scan", "batch", "acquire", "sites", "outputs", "training", "cli", "synth", "series", "registry"},
    "outputs": {"batch", "acquire", "sites", "training", "cli", "synth", "series"},
    "sites": {"batch", "acquire", "training", "cli", "synth"},
    "synth": {"batch", "acquire", "sites", "training", "cli", "series", "scan"},
    "batch": {"acquire", "training", "cli"},
    "training": {"batch", "acquire", "cli"},
    "registry": {"acquire", "cli", "sites", "outputs", "synth", "series"},
    "shared": {"scan", "models", "batch", "acquire", "sites", "outputs", "training", "cli", "synth", "series",
               "registry"},
}


def _room(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return "shared" if rel.stem in SHARED_FACTS else rel.stem
    return rel.parts[0]


def _imported_rooms(path: Path) -> set[str]:
    """Top-level rooms of minescan that `path` imports (relative or absolute)."""
    module_parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module_parts[:-1] if module_parts[-1] != "__init__" else module_parts[:-1]
    if module_parts[-1] == "__init__":
        package = module_parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [a.name] for a in node.names] if not node.module else [target]
            elif node.module and node.module.startswith("minescan"):
                names = [node.module.split(".")[1:]]
            else:
                continue
            for name in names:
                if name and ".".join(name[:2]) not in CONTRACTS:
                    found.add(name[0] if name[0] not in SHARED_FACTS else "shared")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("minescan."):
                    first = alias.name.split(".")[1]
                    found.add("shared" if first in SHARED_FACTS else first)
    return found


def test_every_room_imports_only_what_its_rules_allow():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = _room(path)
        bad = _imported_rooms(path) & FORBIDDEN.get(room, set())
        if bad:
            broken.append(f"{path.relative_to(PACKAGE)} ({room}) imports {sorted(bad)}")
    assert not broken, "\n".join(broken)


def test_no_core_module_imports_acquire():
    offenders = [
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
        if _room(p) not in ("acquire", "cli") and "acquire" in _imported_rooms(p)
    ]
    assert offenders == []


def test_every_room_says_what_it_owns_and_what_it_may_import():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80, f"{init.relative_to(PACKAGE)} has no room docstring"
        if init.parent.name not in ("cli",):
            assert "import" in doc, f"{init.relative_to(PACKAGE)} does not say what it may import"


def test_run_and_shard_paths_are_spelled_in_one_module():
    literals = ("_SUCCESS.json", "run.json")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in literals:
                offenders.append(f"{path.relative_to(PACKAGE)}: {node.value!r}")
    assert offenders == []
