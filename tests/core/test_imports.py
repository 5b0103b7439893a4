"""The import graph of the engine, the spaces and the predictors: stages import only what sits below
them (the rules of docs/architecture.md), and no module imports itself back through others.

Every import counts, the lazy ones inside functions included."""
import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("supernet", "search_spaces", "predictors")
BASE = {"supernet.core"}
STAGES = {  # stage -> the stages (besides itself) it may import
    "supernet.core": set(),
    "supernet.layers": BASE,
    "supernet.data": BASE,
    "supernet.io": BASE,  # disk only: loading data or recalibrating BN is orchestration (evaluation)
    "supernet.evaluation": BASE | {"supernet.layers", "supernet.data", "supernet.io",
                                   "supernet.hardware"},  # an int8 target's quantised model (runtimes)
    "supernet.hardware": BASE | {"supernet.layers", "supernet.data", "supernet.io"},
    "supernet.training": BASE | {"supernet.layers", "supernet.data", "supernet.io", "supernet.evaluation"},
    "supernet.nas": BASE | {"supernet.io", "supernet.evaluation"},
    "supernet.distributed": BASE | {"supernet.layers", "supernet.data", "supernet.io", "supernet.evaluation",
                                    "supernet.hardware", "supernet.training", "supernet.nas"},
    "supernet.api_targets": {s for s in (
        "supernet.core", "supernet.evaluation", "supernet.hardware", "supernet.io", "supernet.nas",
        "supernet.distributed", "supernet.api", "predictors")},
    "supernet.api": {s for s in (
        "supernet.core", "supernet.layers", "supernet.data", "supernet.io", "supernet.evaluation",
        "supernet.hardware", "supernet.training", "supernet.nas", "supernet.distributed", "predictors")},
    "supernet.cli": {"supernet.core", "supernet.training", "supernet.nas", "supernet.hardware", "supernet.api",
                     "supernet.api_targets"},
    "supernet.moved": set(),  # the old module names; it resolves them with importlib, on first use
    "supernet": {"supernet.moved", "supernet.core", "supernet.layers", "supernet.data", "supernet.io", "supernet.evaluation",
                 "supernet.hardware", "supernet.training", "supernet.nas", "supernet.distributed", "supernet.api",
                 "supernet.api_targets"},
    "search_spaces": BASE | {"supernet.layers", "supernet.io"},
    "predictors": BASE | {"supernet.io", "supernet.hardware"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def imports(name: str, path: Path, known: dict) -> set[str]:
    """Every project module ``name`` imports (module level or inside functions), resolved to a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t.split(".")[0] in PACKAGES}
    return found - {name}


def stage(name: str) -> str:
    if name.split(".")[0] != "supernet":
        return name.split(".")[0]
    return ".".join(name.split(".")[:2])


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_belongs_to_a_stage(graph):
    assert {stage(m) for m in graph} <= set(STAGES), sorted({stage(m) for m in graph} - set(STAGES))


def test_no_stage_imports_one_above_it(graph):
    upward = [f"{m} imports {t}" for m, targets in graph.items() for t in targets
              if stage(t) != stage(m) and stage(t) not in STAGES[stage(m)]]
    assert not upward, "\n".join(upward)


def test_the_engine_names_no_concrete_space_and_only_the_front_door_takes_predictors(graph):
    assert not [m for m, targets in graph.items() if m.startswith("supernet") and
                any(t.startswith("search_spaces") for t in targets)]
    assert {m for m, targets in graph.items() if m.startswith("supernet") and
            any(t.startswith("predictors") for t in targets)} <= {"supernet.api", "supernet.api_targets"}


def test_no_import_cycle(graph):
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "import cycle: " + " -> ".join(trail[trail.index(node):] + [node])
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path):
    """The rules are not vacuous: a planted upward import and a planted cycle are found."""
    known = {"supernet.core.a": tmp_path / "a.py", "supernet.core.b": tmp_path / "b.py"}
    (tmp_path / "a.py").write_text("from .b import x\ndef f():\n    from ..api import train\n")
    (tmp_path / "b.py").write_text("def g():\n    from . import a\n")
    planted = {n: imports(n, p, {**known, "supernet.api": None}) for n, p in known.items()}
    assert planted["supernet.core.a"] == {"supernet.core.b", "supernet.api"}
    assert "supernet.api" not in STAGES["supernet.core"] and planted["supernet.core.b"] == {"supernet.core.a"}


def test_architecture_page_lists_every_stage():
    text = (REPO / "docs" / "architecture.md").read_text()
    for name in STAGES:
        assert re.search(rf"`{re.escape(name.replace('.', '/'))}", text), name


def test_no_private_name_is_imported_across_modules():
    """A name with a leading underscore stays in its module: another module that needs it gets a public name."""
    crossing = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in PACKAGES):
                crossing += [f"{name}: {a.name}" for a in node.names if a.name.startswith("_")
                             and not a.name.startswith("__")]
    assert not crossing, crossing
