"""The project's frame: dependencies in step, the command line, the table of contents."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

from pgsound.cli import main

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's.
CONDA_NAMES = {"torch": "pytorch", "soundfile": "pysoundfile"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].strip().lower()


def test_environment_yml_lists_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    from_pip = {_name(line) for line in pip_section}  # packages conda-forge does not carry
    missing = [n for n in map(_name, project["dependencies"]) if CONDA_NAMES.get(n, n) not in conda | from_pip]
    assert not missing, f"environment.yml lacks runtime dependencies {missing}"
    assert any(line.startswith("-e .") for line in pip_section)


def test_book_pins_jupyter_book_1():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "jupyter-book==1.0.4.post1" in extras["book"]


def test_toc_lists_existing_chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters") or []]
    for name in files:
        assert (ROOT / f"{name}.md").exists(), f"_toc.yml names {name} but {name}.md does not exist"


def test_info_prints_versions_device_and_profile(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("pgsound", "torch", "device", "threads", "profile   smoke"):
        assert key in out


def test_console_script_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "pgsound.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "info" in result.stdout


def test_unknown_command_is_an_error(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and err.count("\n") == 1  # one line; the usage is one --help away


def test_every_package_the_code_imports_is_declared():
    """A third-party import in pgsound/ (at any depth of the code) is a runtime dependency or an extra's."""
    import ast
    import sys

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    declared |= {_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    import_names = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn"}
    optional = {"tensorboard", "torch"}  # tensorboard: used when installed; torch: installed first by make
    imported = set()
    for path in (ROOT / "pgsound").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "pgsound"}
    missing = {import_names.get(n, n.lower()) for n in third_party} - declared - optional
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
