"""The layering rules and the declared dependencies, checked from the source itself."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

import pytest

from tests.conftest import PROJECT

PURE = ("scoring", "reports")
FORBIDDEN_IN_PURE = {"harvester", "duckdb", "httpx", "httpcore", "socket", "subprocess", "requests"}
CLOCK = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time|utcnow)\s*\(")
IMPORT_NAMES = {"bs4": "beautifulsoup4", "yaml": "pyyaml", "sklearn": "scikit-learn"}  # where the import and the distribution differ


def imports(package: str) -> dict[str, set[str]]:
    """Top-level modules each file of `package` imports."""
    found = {}
    for path in (PROJECT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(PROJECT))] = names
    return found


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_touch_no_io_and_no_clock(package):
    for path, names in imports(package).items():
        assert not names & FORBIDDEN_IN_PURE, f"{path} imports {names & FORBIDDEN_IN_PURE}"
        source = (PROJECT / path).read_text(encoding="utf-8")
        assert not CLOCK.search(source), f"{path} reads the clock; pass `now` in"
        assert "open(" not in source.replace("re.compile(", ""), f"{path} opens a file"


def test_every_third_party_import_is_declared():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    everything = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    declared = {re.split(r"[<>=!~\[ ;]", d)[0].lower().replace("_", "-") for d in everything}
    ours = {"harvester", "scoring", "reports", "tests"}
    for package in ("harvester", "scoring", "reports"):
        for path, names in imports(package).items():
            for name in names - ours - set(sys.stdlib_module_names) - {"__future__"}:
                dist = IMPORT_NAMES.get(name, name).lower().replace("_", "-")
                assert dist in declared, f"{path} imports {name}, which pyproject.toml does not declare"


def test_the_training_extra_is_imported_only_where_training_runs():
    """scikit-learn and SciPy are the `train` extra: nothing a default install runs imports them
    at module level."""
    for package in ("harvester", "scoring", "reports"):
        for path in (PROJECT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            top = {a.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for a in node.names}
            top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
            assert not top & {"sklearn", "scipy"}, f"{path} imports the training extra at module level"
