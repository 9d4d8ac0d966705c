"""Check the built HTML book: what a reader of every chapter page must find, and what must not be there.

    python book/check_html.py [_build/html]

For every chapter page (``NN_*.html``): a learning-goals section, the running time, a summary, exercises with
answers in collapsed boxes, at least one resolved citation, alt text and a caption on every figure a ``diagram``
cell draws, every hidden solution cell collapsed; and none of: an unresolved reference or citation, an error
output, a warning printed by a cell, an ``<audio>`` element without a source, a printed temporary path, a code
line longer than the page. And each page links to its chapter's notebook and to the package's wheel, and
both files exist (``book/notebooks.py`` writes them). Prints one line per problem and exits 1 if there is any. ``make
book-check`` builds the smoke book and runs this; CI runs it after the tests.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

CODE_LINE_LIMIT = 78
TEMPORARY_PATH = re.compile(r"(/tmp/|/var/folders/|\\AppData\\Local\\Temp)")
IMAGE_FILE = re.compile(r"\S+\.(png|jpe?g|gif|svg|webp)", re.IGNORECASE)


def chapter_problems(html: str) -> list[str]:
    """What is wrong with one chapter page (an empty list when nothing is)."""
    soup = BeautifulSoup(html, "html.parser")
    main = soup.find("main") or soup
    problems = []
    headings = [h.get_text(" ", strip=True).lower().rstrip("#").strip() for h in main.find_all(["h1", "h2", "h3"])]
    for wanted in ("learning goals", "summary", "exercises"):
        if not any(h.startswith(wanted) for h in headings):
            problems.append(f"no '{wanted}' section")
    text = main.get_text(" ", strip=True)
    if not re.search(r"about \d+ (second|minute)s? on a 2-core", text, re.IGNORECASE):
        problems.append("no running time ('about N minutes on a 2-core laptop')")
    if not main.select("details, .dropdown, .toggle"):
        problems.append("no collapsed answers (dropdown admonitions)")
    if not main.select('a[href*="bibliography"]'):
        problems.append("no resolved citation (a link to the bibliography)")
    for node in main.select("span.bibtex-citation"):
        if not node.find("a"):  # sphinxcontrib-bibtex leaves an unknown key as an empty "[]"
            problems.append(f"unresolved citation: {node.get_text(strip=True)!r}")
    for node in main.select("span.problematic, .problematic"):
        problems.append(f"unresolved reference: {node.get_text(strip=True)!r}")
    for node in main.select(".output.traceback, .output.error"):
        first = node.get_text(" ", strip=True)[:120]
        problems.append(f"error output: {first!r}")
    for node in main.select(".output.stderr"):
        found = re.search(r"\w*Warning\b.*", node.get_text(" "))
        if found:  # a library's complaint about the reader's set-up belongs in the package, not on the page
            problems.append(f"a warning in an output: {found.group(0)[:120]!r}")
    if "Traceback (most recent call last)" in text:
        problems.append("a traceback in the page")
    for audio in main.find_all("audio"):
        sources = [audio.get("src")] + [s.get("src") for s in audio.find_all("source")]
        if not any(sources):
            problems.append("an <audio> element without a source")
    for output in main.select(".cell_output"):
        found = TEMPORARY_PATH.search(output.get_text(" "))
        if found:
            problems.append(f"a temporary path in an output: ...{output.get_text(' ')[found.start():][:60]!r}")
    problems += diagram_problems(main) + solution_problems(main)
    for block in main.select(".cell_input pre"):
        for line in block.get_text().splitlines():
            if len(line) > CODE_LINE_LIMIT:
                problems.append(f"a code line of {len(line)} characters: {line[:60]!r}...")
    return problems


def _cell_name(cell) -> str:
    """How a problem names a cell: the first line of its code, or its figure's name."""
    code = cell.select_one(".cell_input pre")
    first = code.get_text().strip().splitlines()[0] if code and code.get_text().strip() else ""
    figure = cell.select_one("figure[id]")
    return repr(first[:60]) if first else (f"figure {figure['id']!r}" if figure else "a cell")


def diagram_problems(main) -> list[str]:
    """A ``diagram`` cell's figures need alt text (``mystnb.image.alt``) and a caption (``mystnb.figure.caption``).

    Without alt text myst-nb still writes an ``alt``: the image's own path (docutils' default), which says nothing.
    """
    problems = []
    for cell in main.select("div.cell.tag_diagram"):
        images = cell.select(".cell_output img")
        if not images:
            problems.append(f"a diagram cell without a figure: {_cell_name(cell)}")
        for image in images:
            alt, source = image.get("alt", "").strip(), image.get("src", "")
            if not alt or alt == source or alt == source.rsplit("/", 1)[-1] or IMAGE_FILE.fullmatch(alt):
                problems.append(f"a diagram without alt text: {_cell_name(cell)}")
        if images and not cell.select_one(".cell_output figcaption"):
            problems.append(f"a diagram without a caption: {_cell_name(cell)}")
    return problems


def solution_problems(main) -> list[str]:
    """A ``solution`` cell's code and outputs are inside a closed toggle (``hide-cell``: ``<details>``, not open)."""
    problems = []
    for cell in main.select("div.cell.tag_solution"):
        for part in cell.select(".cell_input, .cell_output"):
            toggle = part.find_parent("details")
            inside = toggle is not None and cell in toggle.parents
            if not inside or toggle.has_attr("open"):
                problems.append(f"a solution shown open: {_cell_name(cell)}")
                break
    return problems


def take_away_problems(page: Path, root: Path) -> list[str]:
    """A chapter page links to its notebook and to the package's wheel, and both lie where the links point
    (``book/notebooks.py`` writes them)."""
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    problems = []
    for suffix, what in ((f"/{page.stem}.ipynb", "its notebook"), (".whl", "the pgsound wheel")):
        links = [a["href"] for a in soup.select("a[href]") if a["href"].endswith(suffix)]
        if not links:
            problems.append(f"no link to {what}")
        elif not (page.parent / links[0]).resolve().is_file():
            problems.append(f"the link to {what} points at nothing: {links[0]}")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "_build/html")
    pages = sorted(root.rglob("[0-9][0-9]_*.html"))
    if not pages:
        print(f"no chapter pages under {root}: build the book first (make book PROFILE=smoke)")
        return 1
    failed = 0
    for page in pages:
        for problem in chapter_problems(page.read_text(encoding="utf-8")) + take_away_problems(page, root):
            print(f"{page.relative_to(root)}: {problem}")
            failed += 1
    print(f"{len(pages)} chapter pages checked, {failed} problem(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
