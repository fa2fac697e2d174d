"""The architecture as the folders show it: the watcher and the renderers work without Bolt, and the
diagnosis knows nothing of its callers. Checked in a fresh interpreter, so what a module drags in
transitively counts too."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> list[str]:
    path = ROOT.joinpath(*package.split("."))
    return [package] + [f"{package}.{m.name}" for m in pkgutil.walk_packages([str(path)])]


def _loaded_after_importing(modules: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("package", ["handlers.watch", "handlers.render"])
def test_the_watcher_and_the_renderers_do_not_import_bolt(package: str) -> None:
    loaded = _loaded_after_importing(_modules(package))
    assert not {m for m in loaded if m == "slack_bolt" or m.startswith("slack_bolt.")}
    assert not {m for m in loaded if m.startswith("handlers.slack")}, "only Slack listeners belong there"


def test_the_diagnosis_imports_nothing_of_its_callers() -> None:
    loaded = _loaded_after_importing(_modules("checks"))
    callers = {m for m in loaded if m.split(".")[0] in ("handlers", "bot", "slack_bolt", "slack_sdk")}
    assert not callers


def test_every_handler_module_sits_in_a_folder_by_use() -> None:
    top = sorted(p.name for p in (ROOT / "handlers").glob("*.py"))
    assert top == ["__init__.py", "background.py", "diagnosis.py", "http_body.py", "ports.py"]
    assert {p.name for p in (ROOT / "handlers").iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "render",
        "slack",
        "watch",
    }
