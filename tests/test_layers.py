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
