"""Chapters to take away: each chapter as a notebook (``.ipynb``) beside the HTML book, with the package's wheel.

A Sphinx extension (``_config.yml``, ``sphinx.local_extensions``), so ``make book`` (``jupyter-book build``)
writes, into the built site:

- ``notebooks/NN_name.ipynb`` for every chapter (jupytext turns its MyST Markdown into a notebook), whose first
  cell installs ``pgsound`` where it is missing (Colab, a fresh Jupyter) and does nothing where it is installed;
- ``notebooks/pgsound-VERSION-py3-none-any.whl``, the package as ``pip wheel --no-deps`` builds it;
- at the top of every chapter page, a link to its notebook and to the wheel, and, where ``repository.url`` is
  set in ``_config.yml``, an "Open in Colab" badge.

Where the first cell installs ``pgsound`` from, in order: the wheel where it lies beside the notebook (a relative
address means nothing to a notebook that was downloaded, so the cell looks in its working folder, where a reader
who downloaded both put them); the wheel on the published site, when ``html.baseurl`` in ``_config.yml`` says
where that is; the repository (``pip install git+URL@BRANCH``), when ``repository.url`` is set. With none of
these it stops with one line saying what to download. It also installs ``myst-nb``, whose ``glue`` the chapters
call, where that is missing.

The badge opens the notebook in Colab from the repository's ``gh-pages`` branch, where a published Jupyter Book
lies (``ghp-import -n -p -f _build/html``); ``sphinx.config.pgsound_notebooks_branch`` names another branch.

    python book/notebooks.py check _build/html/notebooks/01_sound_as_pictures.ipynb

runs one taken-away notebook the way a reader's Jupyter would (what ``make book-check``, and so CI, does): the
notebook and the wheel alone in an empty folder, a fresh virtual environment, every cell executed under
``PGSOUND_PROFILE=smoke``, so that its first cell installs the wheel, and pip installs what the wheel declares
(numpy, librosa, h5py, music21, ...) and myst-nb from the package index, as in Colab. What a reader's Jupyter
already holds is linked into that environment from this one instead of installed again: torch (gigabytes, and
its build depends on the platform) and the kernel (ipykernel), each with what it needs, and nothing else. So the
wheel must bring every file of the package, and a dependency the package uses but does not declare fails here.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from html import escape
from importlib import metadata
from pathlib import Path

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
FOLDER = "notebooks"  # in the built site
CHAPTER = re.compile(r"^book/\d\d_[a-z0-9_]+$")  # the docnames of chapter pages
SETUP_TAG = "pgsound-setup"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# Linked into the fresh environment of `check`, with what each needs: what a reader's Jupyter holds. The
# first cell's pip installs everything else: the wheel, the dependencies it declares, myst-nb.
LINKED_DISTRIBUTIONS = ("torch", "ipykernel")

SETUP_CELL = '''\
# Set-up for this notebook outside the book's own environment (Colab, a fresh Jupyter): installs pgsound,
# and myst-nb whose glue() the chapter calls, where they are missing. Where both are, it does nothing.
import importlib.util
import subprocess
import sys
from pathlib import Path

# Tried in this order: the wheel downloaded into this notebook's folder (the book's notebooks folder holds it),
# the same wheel on the published book, the package's repository. None: that address is not known.
WHEEL = {wheel!r}
SITE_WHEEL = {site_wheel!r}
REPOSITORY = {repository!r}

wanted = []
if importlib.util.find_spec("pgsound") is None:
    sources = [WHEEL] if Path(WHEEL).exists() else []
    sources += [source for source in (SITE_WHEEL, REPOSITORY) if source]
    if not sources:
        raise ModuleNotFoundError(f"pgsound is not installed: download {{WHEEL}} from the chapter's page into "
                                  f"{{Path.cwd()}} and run this cell again")
    wanted.append(sources[0])
if importlib.util.find_spec("myst_nb") is None:
    wanted.append("myst-nb")
if wanted:
    print("installing", *wanted)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *wanted])
    importlib.invalidate_caches()
'''


def package_version(root: Path = ROOT) -> str:
    """The version in pyproject.toml, which names the wheel (read as text: Python 3.10 has no tomllib)."""
    return re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(encoding="utf-8"), re.M)[1]


def wheel_name(version: str) -> str:
    return f"pgsound-{version}-py3-none-any.whl"


def install_sources(version: str, baseurl: str = "", repository_url: str = "", branch: str = "main") -> dict:
    """The three addresses the first cell tries: the wheel's file name, its site URL, the repository's pip URL."""
    wheel = wheel_name(version)
    site_wheel = f"{baseurl.rstrip('/')}/{FOLDER}/{wheel}" if baseurl else None
    repository = f"git+{repository_url.rstrip('/')}@{branch}" if repository_url else None
    return {"wheel": wheel, "site_wheel": site_wheel, "repository": repository}


def setup_cell_source(wheel: str, site_wheel: str | None, repository: str | None) -> str:
    """The code of the first cell (see the module's docstring for what it does)."""
    return SETUP_CELL.format(wheel=wheel, site_wheel=site_wheel, repository=repository)


def taken_away_notebook(chapter: Path, setup_source: str):
    """A chapter as the notebook a reader downloads: the set-up cell, then the chapter's cells."""
    import nbformat
    from run_chapter import chapter_notebook

    notebook = chapter_notebook(chapter)
    notebook.metadata.pop("jupytext", None)  # a plain notebook: saving it must not write a .md beside it
    cell = nbformat.v4.new_code_cell(setup_source, metadata={"tags": [SETUP_TAG]})
    notebook.cells.insert(0, cell)
    nbformat.validate(notebook)
    return notebook


def build_wheel(out: Path, root: Path = ROOT) -> Path:
    """``pip wheel --no-deps`` of the package into ``out``, built from a copy so no ``build/`` lands in ``root``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pgsound-wheel-") as folder:
        source = Path(folder) / "pgsound"
        shutil.copytree(root / "pgsound", source / "pgsound", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, source / name)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
                       check=True)
    wheel = out / wheel_name(package_version(root))
    if not wheel.exists():
        raise FileNotFoundError(f"pip wheel did not write {wheel}")
    return wheel


def colab_url(repository_url: str, branch: str, path: str) -> str | None:
    """Colab's address for a notebook at ``path`` on ``branch`` of a GitHub repository (None elsewhere)."""
    found = re.match(r"^https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", repository_url or "")
    if not found:
        return None
    return f"https://colab.research.google.com/github/{found[1]}/{found[2]}/blob/{branch}/{path}"


def links_html(docname: str, version: str, colab: str | None) -> str:
    """The block at the top of a chapter page: its notebook, the wheel, and Colab's badge where there is one."""
    up = posixpath.relpath(FOLDER, posixpath.dirname(docname) or ".")
    notebook = f"{up}/{posixpath.basename(docname)}.ipynb"
    parts = [f'<a class="reference download" href="{escape(notebook)}" download>this chapter as a notebook '
             f'(.ipynb)</a>',
             f'<a class="reference download" href="{escape(up)}/{wheel_name(version)}" download>the pgsound '
             f'wheel</a> (its first cell installs it from beside the notebook)']
    if colab:
        parts.append(f'<a class="reference external" href="{escape(colab)}"><img src="{COLAB_BADGE}" '
                     f'alt="Open in Colab" style="vertical-align: middle"></a>')
    return '<p class="pgsound-notebook-links">Download ' + " · ".join(parts) + "</p>\n"


# The Sphinx extension.


def _repository(app) -> tuple[str, str]:
    options = app.config.html_theme_options or {}
    return options.get("repository_url", ""), options.get("repository_branch", "") or "main"


def _sources(app) -> dict:
    url, branch = _repository(app)
    return install_sources(package_version(), app.config.html_baseurl or "", url, branch)


def add_links(app, pagename, templatename, context, doctree) -> None:
    """html-page-context: put the links at the top of every chapter page."""
    if not CHAPTER.match(pagename) or "body" not in context:
        return
    url, _ = _repository(app)
    colab = colab_url(url, app.config.pgsound_notebooks_branch, f"{FOLDER}/{posixpath.basename(pagename)}.ipynb")
    context["body"] = links_html(pagename, package_version(), colab) + context["body"]


def write_notebooks(app, exception) -> None:
    """build-finished: every chapter's notebook and the wheel into the site's notebooks folder."""
    if exception is not None or app.builder.format != "html":
        return
    import nbformat

    out = Path(app.outdir) / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    setup_source = setup_cell_source(**_sources(app))
    chapters = sorted(name for name in app.env.found_docs if CHAPTER.match(name))
    for docname in chapters:
        nbformat.write(taken_away_notebook(Path(app.srcdir) / f"{docname}.md", setup_source),
                       out / f"{posixpath.basename(docname)}.ipynb")
    wheel = build_wheel(out)
    print(f"==> {len(chapters)} chapter notebooks and {wheel.name} written to {out}")


def setup(app) -> dict:
    app.add_config_value("pgsound_notebooks_branch", "gh-pages", "html")
    app.connect("html-page-context", add_links)
    app.connect("build-finished", write_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# `check`: one notebook in a fresh environment.


def requirement_closure(names: tuple[str, ...]) -> set[str]:
    """The installed distributions ``names`` need, themselves included (their markers evaluated here)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def link_distributions(names: tuple[str, ...], into: Path, leave_out: tuple[str, ...] = ("pgsound",)) -> int:
    """Symlink the files of ``names`` and of what they need into ``into``, less ``leave_out``; returns how many
    top-level entries (packages, modules, metadata folders) were linked."""
    from packaging.utils import canonicalize_name

    into.mkdir(parents=True, exist_ok=True)
    wanted = requirement_closure(names) - {canonicalize_name(n) for n in leave_out}
    linked = 0
    for dist in metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) not in wanted:
            continue
        base = Path(dist.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            source, target = base / top, into / top
            if top != ".." and source.exists() and not target.exists() and not top.endswith(".pth"):
                target.symlink_to(source)
                linked += 1
    return linked


def fresh_environment(folder: Path) -> Path:
    """A new virtual environment with :data:`LINKED_DISTRIBUTIONS` linked in and a kernelspec named "fresh";
    returns the Jupyter path that holds the kernelspec."""
    venv.create(folder, with_pip=True)
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    linked = folder / "linked"
    link_distributions(LINKED_DISTRIBUTIONS, linked)
    (Path(site) / "pgsound_linked.pth").write_text(f"{linked}\n", encoding="utf-8")
    subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(folder), "--name", "fresh"],
                   check=True, capture_output=True)
    return folder / "share" / "jupyter"


def check(notebook: Path, wheel: Path | None = None) -> int:
    """Execute a taken-away notebook in a fresh environment, with its wheel beside it; 0 when every cell ran."""
    import nbformat
    from nbclient.exceptions import CellExecutionError
    from run_chapter import ChapterClient

    wheel = wheel or notebook.parent / wheel_name(package_version())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pgsound-taken-away-") as folder:
        work = Path(folder) / "work"
        work.mkdir()
        shutil.copy2(notebook, work / notebook.name)
        shutil.copy2(wheel, work / wheel.name)
        jupyter_path = fresh_environment(Path(folder) / "venv")
        print(f"==> fresh environment ready after {time.perf_counter() - started:.0f} s; executing {notebook.name}")
        os.environ["JUPYTER_PATH"] = str(jupyter_path)  # where the client finds the kernel "fresh"
        book = nbformat.read(work / notebook.name, as_version=4)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env |= {"PGSOUND_PROFILE": "smoke", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        client = ChapterClient(book, timeout=900, kernel_name="fresh", resources={"metadata": {"path": str(work)}})
        try:
            client.execute(env=env)
        except CellExecutionError as error:
            print(f"{notebook.name}: a cell raised in the fresh environment:\n{error}")
            return 1
    installed = re.sub(r"\x1b\[[0-9;]*m", "", "".join(o.get("text", "") for o in book.cells[0].get("outputs", [])))
    print(f"==> {notebook.name} ran in a fresh environment in {time.perf_counter() - started:.0f} s "
          f"(first cell: {installed.strip() or 'nothing to install'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="execute a taken-away notebook in a fresh environment")
    checking.add_argument("notebook", type=Path)
    checking.add_argument("--wheel", type=Path, help="default: the wheel beside the notebook")
    args = parser.parse_args(argv)
    return check(args.notebook, args.wheel)


if __name__ == "__main__":
    sys.path.insert(0, str(BOOK))
    sys.exit(main())
