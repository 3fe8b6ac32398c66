"""The layout rule of docs/architecture.md, checked on the source tree itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("agent_orchestrator", "graphs", "shared")
MAX_LINES = 400


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_domains_never_import_the_service_or_the_graph() -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in _modules("shared")
        for module in _imports(path)
        if module.split(".")[0] in {"agent_orchestrator", "graphs"}
    }
    assert not wrong


def test_graphs_never_import_the_service() -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in _modules("graphs")
        for module in _imports(path)
        if module.startswith("agent_orchestrator")
    }
    assert not wrong


def test_deps_imports_only_domains_and_graphs() -> None:
    project = {
        module
        for module in _imports(ROOT / "agent_orchestrator" / "deps.py")
        if module.split(".")[0] in {"agent_orchestrator", "graphs", "shared"}
    }
    assert project
    assert all(module.startswith(("shared.lib", "graphs")) for module in project), project


def test_no_store_or_domain_service_in_the_service_package() -> None:
    misplaced = [
        path.relative_to(ROOT)
        for path in _modules("agent_orchestrator")
        if path.stem in {"store", "service", "engine", "policy", "triage"}
    ]
    assert not misplaced


def test_no_product_file_over_the_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for package in PRODUCT
        for path in _modules(package)
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long
