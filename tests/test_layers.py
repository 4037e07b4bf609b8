"""Imports point one way: stages -> library -> flows.lib.{errors,schemas,config}.

A stage is a module that a dvc.yaml `cmd` runs (`python -m flows.<name>`); the entry points
(`personas` subcommands) are the other modules directly under flows/. The library is
flows/lib/ and models/; crawlers/ sits on the lowest layer only."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOWEST = {"flows.lib.errors", "flows.lib.schemas", "flows.lib.config"}
DVC_FILES = ["dvc.yaml", "sweeps/dvc.yaml", "crawlers/dvc.yaml"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every project module `path` imports, at any depth of the file (function-level too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if is_module(f"{node.module}.{alias.name}"))
    return {name for name in names if name.split(".")[0] in {"flows", "models", "crawlers"}}


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def top_level_flows() -> set[str]:
    return {module_name(path) for path in (ROOT / "flows").glob("*.py") if path.name != "__init__.py"}


def stage_modules() -> set[str]:
    stages: set[str] = set()
    for dvc_file in DVC_FILES:
        stages.update(re.findall(r"python -m (flows\.\w+)", (ROOT / dvc_file).read_text()))
    return stages


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_every_stage_of_the_dags_is_a_module_under_flows():
    assert stage_modules() and stage_modules() <= top_level_flows()


@pytest.mark.parametrize("stage", sorted(stage_modules()))
def test_no_stage_imports_another_stage_or_entry_point(stage):
    path = ROOT / (stage.replace(".", "/") + ".py")
    others = imported_modules(path) & (top_level_flows() - {stage})
    assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}: move what they share into flows/lib or models"


@pytest.mark.parametrize("folder", ["flows/lib", "models", "crawlers"])
def test_the_library_and_the_crawlers_import_no_stage(folder):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & top_level_flows()) for path in sources(folder)
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_crawlers_use_only_the_lowest_layer():
    offenders = {}
    for path in sources("crawlers"):
        outside = {name for name in imported_modules(path) if not name.startswith("crawlers")}
        outside -= LOWEST | {"flows", "flows.lib"}
        if outside:
            offenders[str(path.relative_to(ROOT))] = sorted(outside)
    assert not offenders


def test_the_lowest_layer_imports_nothing_above_it():
    for name in LOWEST:
        path = ROOT / (name.replace(".", "/") + ".py")
        above = imported_modules(path) - LOWEST - {"flows", "flows.lib"}
        assert not above, f"{path.relative_to(ROOT)} imports {sorted(above)}"


def test_the_check_sees_a_stage_that_imports_a_stage(tmp_path):
    """The detector itself: a function-level import of a stage counts."""
    fake = tmp_path / "stage.py"
    fake.write_text("def f():\n    from flows.train import something\n")
    assert "flows.train" in imported_modules(fake)
