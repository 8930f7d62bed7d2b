"""Imports run one way: api -> labelgen, storage; trainer and labelgen -> mugcore, storage;
storage -> mugcore; mugcore -> none of ours. Checked on the source, lazy imports included."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("mugcore", "storage", "labelgen", "trainer", "api")
ALLOWED = {
    "mugcore": set(),
    "storage": {"mugcore"},
    "labelgen": {"mugcore", "storage"},
    "trainer": {"mugcore", "storage"},
    "api": {"mugcore", "storage", "labelgen"},
}


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names)
    return found & set(OURS)


@pytest.mark.parametrize("package", OURS)
def test_imports_run_one_way(package: str) -> None:
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imported_packages(path) - ALLOWED[package] - {package}
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"{package} imports packages above it: {wrong}"


# Inside labelgen, MUG's parts build on each other in one order: the stages know nothing of
# trust, trust nothing of the methods, the methods nothing of the service or the commands.
LABELGEN_BELOW = {
    "stages": {"config", "stages"},
    "trust": {"config", "outputs", "stages", "trust"},
    "methods": {"config", "outputs", "stages", "trust", "methods"},
}


def _labelgen_parts(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n.split(".")[1] for n in names
                     if n.startswith("labelgen.") and n.count(".") >= 1
                     and n.split(".")[1] in LABELGEN_PARTS)
    return found


LABELGEN_PARTS = {"stages", "trust", "methods", "service", "reporting", "commands", "config",
                  "outputs", "generate", "cli"}


@pytest.mark.parametrize("part", sorted(LABELGEN_BELOW))
def test_labelgen_parts_build_one_way(part: str) -> None:
    wrong = {}
    for path in sorted((ROOT / "labelgen" / part).rglob("*.py")):
        bad = _labelgen_parts(path) - LABELGEN_BELOW[part]
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"labelgen/{part} imports parts above it: {wrong}"
