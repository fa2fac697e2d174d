"""The catalogue's shape: one module per check, named after its id, in known sections, all registered; and
the checks package stays free of the Slack side (handlers, bot, the Slack SDKs)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import checks
from checks import sections
from checks.check import Check
from checks.registry import CATALOGUE

CHECKS_DIR = Path(checks.__file__).parent
CATALOGUE_DIR = CHECKS_DIR / "catalogue"
MODULES = sorted(p.stem for p in CATALOGUE_DIR.glob("*.py") if p.stem != "__init__")
FORBIDDEN = ("handlers", "bot", "slack_bolt", "slack_sdk")


def _anchors() -> set[str]:
    """Every section anchor `checks.sections` defines (its upper-case string constants)."""
    return {v for k, v in vars(sections).items() if k.isupper() and isinstance(v, str) and "/" not in v}


def _module_check(module: str) -> Check:
    found = importlib.import_module(f"checks.catalogue.{module}").CHECK
    assert isinstance(found, Check)
    return found


def test_the_anchors_are_collected() -> None:
    assert sections.SOURCE_ACCESS in _anchors() and sections.SCANS_NO_LONGER_RUN in _anchors()
    assert sections.DEFAULT_DOCS_URL not in _anchors()


def test_check_ids_are_unique() -> None:
    ids = [c.meta.id for c in CATALOGUE]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("module", MODULES)
def test_check_id_is_its_module_name(module: str) -> None:
    assert _module_check(module).meta.id == module.replace("_", "-")


@pytest.mark.parametrize("module", MODULES)
def test_every_section_is_a_known_anchor(module: str) -> None:
    meta = _module_check(module).meta
    assert meta.sections, f"{meta.id} names no section"
    assert set(meta.sections) <= _anchors(), f"{meta.id}: {set(meta.sections) - _anchors()}"


def test_the_registry_lists_every_catalogue_module_once() -> None:
    registered = [_module_of(c) for c in CATALOGUE]
    assert sorted(registered) == MODULES


def _module_of(check: Check) -> str:
    """The catalogue module whose `CHECK` this is."""
    owners = [m for m in MODULES if _module_check(m) is check]
    assert len(owners) == 1, f"{check.meta.id} is the CHECK of {owners}"
    return owners[0]


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


SOURCES = sorted(CHECKS_DIR.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(CHECKS_DIR)) for p in SOURCES])
def test_checks_do_not_import_the_slack_side(path: Path) -> None:
    imported = _imported(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    bad = sorted(n for n in imported if n.split(".")[0] in FORBIDDEN)
    assert not bad, f"{path} imports {bad}"
