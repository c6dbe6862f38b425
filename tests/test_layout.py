"""The folder shows the architecture, and stays that way: few top-level modules, imports that point one way,
private Faust/aiokafka internals in one module only, no test code in the product, short modules."""

import ast
from pathlib import Path

import pytest

from support.processes import ROOT

STREAMS = ROOT / "streams"
SUBPACKAGES = ("worker", "group", "generate", "quality", "dataset", "local", "bench", "training")
SHARED = ("settings", "kafka", "logs", "metrics", "dirlock", "flags")  # flags: what every command shares
# What each room may import from pairstream (besides itself, the shared modules and schemas).
ALLOWED = {
    "generate": set(),
    "quality": {"generate"},
    "worker": {"generate", "quality", "group"},
    "group": {"quality"},  # the mining window the group's sentences go into
    "dataset": set(),
    "local": {"dataset"},
    # quality, generate: `bench --checks` times the gate's text check, `bench --judge` runs the gate on task specs;
    # training: `bench --downstream` runs the downstream benchmark
    "bench": {"local", "dataset", "quality", "generate", "training"},
    "training": {"local"},  # local: the downstream benchmark generates its data with the embedded stack
}
INTERNALS = STREAMS / "worker" / "faust_internals.py"


def modules() -> list[Path]:
    return sorted(STREAMS.rglob("*.py"))


def room(path: Path) -> str:
    rel = path.relative_to(STREAMS).parts
    return rel[0] if len(rel) > 1 else path.stem


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_at_most_8_modules_at_the_top_and_every_room_says_what_it_holds():
    top = sorted(p.name for p in STREAMS.glob("*.py"))
    assert len(top) <= 8, top
    assert {p.name for p in STREAMS.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(SUBPACKAGES)
    for name in SUBPACKAGES:
        doc = ast.get_docstring(ast.parse((STREAMS / name / "__init__.py").read_text()))
        assert doc and "import" in doc, f"streams/{name}/__init__.py should say what lives there and what it may import"


def test_no_module_over_400_lines():
    assert [f"{p.relative_to(ROOT)}: {n}" for p in modules() if (n := len(p.read_text().splitlines())) > 400] == []


def test_no_module_over_300_lines_without_a_reason():
    for path in modules():
        lines = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert lines <= 300 or "300 lines" in doc, f"{path.relative_to(ROOT)} has {lines} lines"


@pytest.mark.parametrize("name", SUBPACKAGES + SHARED)
def test_imports_point_one_way(name):
    for path in modules():
        if room(path) != name:
            continue
        for imported in imports(path):
            parts = imported.split(".")
            if parts[0] in ("support", "tests"):
                pytest.fail(f"{path.relative_to(ROOT)} imports test code ({imported})")
            if parts[0] != "streams" or len(parts) < 2:
                continue
            target = parts[1]
            if target in SHARED or target == name or target == "__init__":
                assert not (name in SHARED and target in SUBPACKAGES), f"{path.relative_to(ROOT)} imports {imported}"
                continue
            assert name not in SHARED, f"shared module {path.relative_to(ROOT)} imports {imported}"
            assert target in ALLOWED[name], f"{path.relative_to(ROOT)} ({name}) imports {imported}"


def test_generate_and_quality_have_no_faust_or_kafka():
    for path in [*(STREAMS / "generate").rglob("*.py"), *(STREAMS / "quality").rglob("*.py")]:
        assert not {i.split(".")[0] for i in imports(path)} & {"faust", "aiokafka", "mode"}, path


def test_group_state_reads_kafka_without_faust():
    for path in (STREAMS / "group").rglob("*.py"):
        assert not {i.split(".")[0] for i in imports(path)} & {"faust", "mode"}, path


def private_uses(path: Path) -> list[str]:
    """Private names reached on other objects: `x._name`, and `getattr(x, "_name")`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
                continue
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "setattr", "hasattr")
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                and str(node.args[1].value).startswith("_")):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_private_internals_are_touched_in_one_module_only():
    assert private_uses(INTERNALS), "the internals module should be where they are"
    elsewhere = [use for path in modules() if path != INTERNALS for use in private_uses(path)]
    assert elsewhere == []


def test_private_names_of_faust_classes_are_not_overridden_elsewhere():
    """A subclass of a Faust class that defines `_something` patches Faust's internals: only in faust_internals."""
    for path in modules():
        if path == INTERNALS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any("faust" in ast.unparse(b) for b in node.bases):
                own = [f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                       and f.name.startswith("_") and not f.name.startswith("__")]
                assert own == [], f"{path.name}: {node.name} overrides {own}"
