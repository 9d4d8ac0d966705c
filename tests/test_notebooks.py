"""Chapters to take away (book/notebooks.py): the notebook, its first cell's choices, the links, the wheel."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))

import notebooks  # noqa: E402  (book/notebooks.py)
import setup_jupyter  # noqa: E402  (book/setup_jupyter.py)
from run_chapter import chapter_notebook  # noqa: E402

CHAPTER = ROOT / "book" / "01_sound_as_pictures.md"
WHEEL = notebooks.wheel_name(notebooks.package_version())


def test_a_taken_away_notebook_is_the_set_up_cell_then_the_chapter():
    setup = notebooks.setup_cell_source(**notebooks.install_sources("0.1.0"))
    taken = notebooks.taken_away_notebook(CHAPTER, setup)
    first, *rest = taken.cells
    assert first.cell_type == "code" and first.metadata["tags"] == [notebooks.SETUP_TAG] and first.source == setup
    assert [c.source for c in rest] == [c.source for c in chapter_notebook(CHAPTER).cells]
    assert "jupytext" not in taken.metadata and taken.metadata["kernelspec"]["name"] == "python3"
    compile(setup, "set-up cell", "exec")


@pytest.mark.parametrize(("sources", "expected"), [
    ({}, {"wheel": WHEEL, "site_wheel": None, "repository": None}),
    ({"baseurl": "https://example.org/book/", "repository_url": "https://github.com/o/r/", "branch": "dev"},
     {"wheel": WHEEL, "site_wheel": f"https://example.org/book/notebooks/{WHEEL}",
      "repository": "git+https://github.com/o/r@dev"}),
])
def test_the_first_cell_knows_the_sites_and_the_repositorys_address_only_when_the_config_gives_them(sources,
                                                                                                  expected):
    assert notebooks.install_sources(notebooks.package_version(), **sources) == expected


def run_setup_cell(monkeypatch, tmp_path, missing: set[str], wheel_beside: bool = False, **sources) -> list:
    """Execute the first cell in ``tmp_path`` with ``missing`` modules absent; what it asked pip to install."""
    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing
                        else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "check_call", lambda command: calls.append(command[command.index("--quiet") + 1:]))
    monkeypatch.chdir(tmp_path)
    if wheel_beside:
        (tmp_path / WHEEL).write_bytes(b"")
    exec(notebooks.setup_cell_source(**notebooks.install_sources("0.1.0", **sources)), {})
    return calls


def test_the_first_cell_does_nothing_where_pgsound_and_myst_nb_are_installed(monkeypatch, tmp_path):
    assert run_setup_cell(monkeypatch, tmp_path, set(), wheel_beside=True, repository_url="https://github.com/o/r") \
        == []


def test_the_first_cell_installs_the_wheel_beside_the_notebook_before_any_address(monkeypatch, tmp_path):
    calls = run_setup_cell(monkeypatch, tmp_path, {"pgsound"}, wheel_beside=True, baseurl="https://example.org",
                           repository_url="https://github.com/o/r")
    assert calls == [[WHEEL]]


def test_the_first_cell_then_takes_the_sites_wheel_then_the_repository(monkeypatch, tmp_path):
    site = run_setup_cell(monkeypatch, tmp_path, {"pgsound"}, baseurl="https://example.org",
                          repository_url="https://github.com/o/r")
    assert site == [[f"https://example.org/notebooks/{WHEEL}"]]
    repository = run_setup_cell(monkeypatch, tmp_path, {"pgsound", "myst_nb"}, repository_url="https://github.com/o/r")
    assert repository == [["git+https://github.com/o/r@main", "myst-nb"]]


def test_the_first_cell_with_nowhere_to_install_from_says_what_to_download_in_one_line(monkeypatch, tmp_path):
    with pytest.raises(ModuleNotFoundError) as raised:
        run_setup_cell(monkeypatch, tmp_path, {"pgsound"})
    message = str(raised.value)
    assert WHEEL in message and str(tmp_path) in message and "\n" not in message


def test_colab_opens_a_notebook_from_a_github_repository_only():
    assert notebooks.colab_url("https://github.com/o/r.git", "gh-pages", "notebooks/01_a.ipynb") == \
        "https://colab.research.google.com/github/o/r/blob/gh-pages/notebooks/01_a.ipynb"
    assert notebooks.colab_url("https://gitlab.com/o/r", "gh-pages", "notebooks/01_a.ipynb") is None
    assert notebooks.colab_url("", "gh-pages", "notebooks/01_a.ipynb") is None


def fake_app(repository_url: str) -> SimpleNamespace:
    config = SimpleNamespace(html_theme_options={"repository_url": repository_url, "repository_branch": "main"},
                             html_baseurl="", pgsound_notebooks_branch="gh-pages")
    return SimpleNamespace(config=config)


def test_a_chapter_page_links_its_notebook_and_the_wheel_and_colab_where_the_repository_is_known():
    page = {"body": "<h1>1. Sound</h1>"}
    notebooks.add_links(fake_app("https://github.com/o/r"), "book/01_sound", "page.html", page, None)
    links = page["body"].split("<h1>")[0]
    assert 'href="../notebooks/01_sound.ipynb" download' in links
    assert f'href="../notebooks/{WHEEL}" download' in links
    assert "colab.research.google.com/github/o/r/blob/gh-pages/notebooks/01_sound.ipynb" in links
    without = {"body": "<h1>1. Sound</h1>"}
    notebooks.add_links(fake_app(""), "book/01_sound", "page.html", without, None)
    assert ".ipynb" in without["body"] and "colab" not in without["body"]
    other = {"body": "<h1>Introduction</h1>"}
    notebooks.add_links(fake_app("https://github.com/o/r"), "book/intro", "page.html", other, None)
    assert other["body"] == "<h1>Introduction</h1>"


@pytest.mark.slow
def test_the_wheel_holds_the_package_data_and_leaves_no_build_folder(tmp_path):
    wheel = notebooks.build_wheel(tmp_path)
    assert wheel.name == WHEEL
    names = zipfile.ZipFile(wheel).namelist()
    assert "pgsound/cli.py" in names and any(n.startswith("pgsound/presets/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("pgsound/pretrained_runs/") and n.endswith(".pt") for n in names)
    assert not (ROOT / "build").exists()


def test_the_fresh_environment_links_only_torch_and_the_kernel(tmp_path):
    """What the wheel declares must come from the package index through the first cell, as in Colab."""
    linked = notebooks.link_distributions(notebooks.LINKED_DISTRIBUTIONS, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert linked == len(names) and {"torch", "ipykernel"} <= names
    assert not any(name.startswith(("pgsound", "__editable__")) for name in names)
    for declared in ("numpy", "scipy", "librosa", "h5py", "music21", "myst_nb", "jupyterlab"):
        assert declared not in names
    assert all((tmp_path / name).is_symlink() for name in names)


def test_setup_jupyter_makes_the_notebook_the_default_viewer_and_keeps_other_settings(tmp_path):
    path = setup_jupyter.settings_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"other:plugin": {"x": 1}, setup_jupyter.PLUGIN: {"defaultViewers": {"r": "Y"}}}))
    assert setup_jupyter.set_default_viewers(path) is True
    settings = json.loads(path.read_text())
    assert settings["other:plugin"] == {"x": 1}
    assert settings[setup_jupyter.PLUGIN]["defaultViewers"] == {"r": "Y", "markdown": "Jupytext Notebook",
                                                                "myst": "Jupytext Notebook"}
    assert setup_jupyter.set_default_viewers(path) is False
