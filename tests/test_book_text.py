"""The chapters' text, checked without executing them: code that fits the page, the apparatus of a course.

The rules are book/AUTHORING.md's.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
CODE_LINE_LIMIT = 78  # characters: what the HTML book shows at 1280 px without a scroll bar
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
DIFFICULTY = re.compile(r"\s(★{1,3})$")
MIN_GRADED_EXERCISES = 2  # exercises per chapter whose answer is code, with a solution and a check
MIN_SLIDES = 4  # tagged cells per chapter for its deck
MIN_DIAGRAMS = 6  # in the whole book


@dataclass
class Cell:
    kind: str  # "code" or "markdown"
    line: int  # 1-based line of the cell's first source line
    source: str
    metadata: dict = field(default_factory=dict)

    @property
    def tags(self) -> list[str]:
        return list(self.metadata.get("tags", []))


def _code_cell_options(body: list[str]) -> tuple[dict, int]:
    """(metadata, lines used) of a code cell's ``---`` YAML block or ``:key: value`` lines."""
    if body and body[0] == "---":
        end = body.index("---", 1)
        return yaml.safe_load("\n".join(body[1:end])) or {}, end + 1
    metadata, used = {}, 0
    while used < len(body) and re.match(r"^:[\w-]+:", body[used]):
        key, value = re.match(r"^:([\w-]+):\s*(.*)$", body[used]).groups()
        metadata[key] = yaml.safe_load(value)
        used += 1
    return metadata, used


def chapter_cells(text: str) -> list[Cell]:
    """The cells of a jupytext MyST notebook, with their metadata (front matter skipped)."""
    lines = text.splitlines()
    i = 0
    if lines and lines[0] == "---":
        i = lines.index("---", 1) + 1
    cells: list[Cell] = []
    markdown: list[str] = []
    md_start, md_meta = i + 1, {}

    def flush_markdown() -> None:
        if any(line.strip() for line in markdown):
            cells.append(Cell("markdown", md_start, "\n".join(markdown), md_meta))
        markdown.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```{code-cell}"):
            flush_markdown()
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            metadata, used = _code_cell_options(body)
            while used < len(body) and not body[used].strip():
                used += 1
            cells.append(Cell("code", i - len(body) + used + 1, "\n".join(body[used:]), metadata))
            md_start, md_meta = i + 2, {}
        elif line.startswith("+++"):
            flush_markdown()
            rest = line[3:].strip()
            md_start, md_meta = i + 2, (json.loads(rest) if rest else {})
        else:
            markdown.append(line)
        i += 1
    flush_markdown()
    return cells


def code_cells(text: str) -> list[tuple[int, str]]:
    """(line number of the first source line, source) of every ``{code-cell}`` in a MyST notebook."""
    return [(cell.line, cell.source) for cell in chapter_cells(text) if cell.kind == "code"]


def exercises(text: str) -> list[tuple[str, list[Cell]]]:
    """(title, cells) of every ``### `` exercise under the chapter's ``## Exercises``."""
    found: list[tuple[str, list[Cell]]] = []
    inside = False
    for cell in chapter_cells(text):
        if cell.kind == "markdown":
            parts = re.split(r"^(#{2,3} .+)$", cell.source, flags=re.M)
            if found and parts[0].strip():
                found[-1][1].append(Cell("markdown", cell.line, parts[0], cell.metadata))
            for heading, after in zip(parts[1::2], parts[2::2]):
                if heading.startswith("## "):
                    inside = heading.lower().startswith("## exercises")
                elif inside:
                    found.append((heading[4:].strip(), [Cell("markdown", cell.line, after, cell.metadata)]))
        elif found and inside:
            found[-1][1].append(cell)
    return found


def test_the_cell_reader_finds_cells_and_their_lines():
    text = "# t\n```{code-cell} ipython3\nx = 1\ny = 2\n```\ntext\n```{code-cell} ipython3\nz = 3\n```\n"
    assert code_cells(text) == [(3, "x = 1\ny = 2"), (8, "z = 3")]
    tagged = ("+++ {\"tags\": [\"slide\"]}\n**A**\n\n```{code-cell} ipython3\n---\ntags: [hide-cell, solution]\n"
              "jupyter:\n  source_hidden: true\n---\nx = 1\n```\n"
              "```{code-cell} ipython3\n:tags: [check]\n\nassert x\n```\n")
    cells = chapter_cells(tagged)
    assert [(c.kind, c.tags, c.source) for c in cells] == [
        ("markdown", ["slide"], "**A**\n"), ("code", ["hide-cell", "solution"], "x = 1"),
        ("code", ["check"], "assert x")]
    assert cells[1].metadata["jupyter"] == {"source_hidden": True} and cells[1].line == 10


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of everything shown or edited as code: code cells whole (their metadata is code in
    the notebook's source view) and fenced blocks of a language (```bash); not admonitions or other directives."""
    found, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = re.match(r"^\s*(`{3,})\s*(\S*)", line)
        if fence is None and opening:
            info = opening.group(2)
            fence = (opening.group(1), info.startswith("{code-cell}") or not info.startswith("{"))
        elif fence is not None and line.strip() == fence[0]:
            fence = None
        elif fence is not None and fence[1]:
            found.append((number, line))
    return found


def test_the_code_line_reader_takes_cells_and_code_blocks_but_not_directives():
    text = ("```{code-cell} ipython3\n---\ntags: [x]\n---\nx = 1\n```\n```bash\nmake\n```\n"
            "```{admonition} Answer\nprose\n```\n")
    assert code_lines(text) == [(2, "---"), (3, "tags: [x]"), (4, "---"), (5, "x = 1"), (8, "make")]


def inline_code(text: str) -> list[tuple[int, str]]:
    """(line number, span) of every inline code span in the prose: one unbroken line in the HTML book."""
    inside = {number for number, _ in code_lines(text)}
    return [(number, span.group(2)) for number, line in enumerate(text.splitlines(), start=1)
            if number not in inside and not re.match(r"^\s*`{3,}", line)
            for span in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", line)]


def test_the_inline_code_reader_takes_spans_but_not_code_blocks():
    text = "Call `f(x)` or ``g(`y`)``.\n```bash\n`not a span`\n```\n"
    assert inline_code(text) == [(1, "f(x)"), (1, "g(`y`)")]


def book_pages() -> list[Path]:
    """Every page of the HTML book, as _toc.yml lists them: the introduction's commands scroll like code cells."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ROOT / f"{name}.md" for name in [toc["root"], *(c["file"] for c in toc["chapters"])]]


# The code width holds for the book's own guides too (book/AUTHORING.md): its examples are copied into chapters.
CODE_PAGES = sorted(set(book_pages()) | set((ROOT / "book").glob("*.md")))


BOOK_PAGES = book_pages()


@pytest.mark.parametrize("path", CODE_PAGES, ids=lambda p: p.stem)
def test_book_page_code_fits_the_page(path: Path):
    long = [f"{path.name}:{number}: {len(line)} characters" for number, line in code_lines(path.read_text())
            if len(line) > CODE_LINE_LIMIT]
    assert not long, f"code lines over {CODE_LINE_LIMIT} characters:\n" + "\n".join(long)


@pytest.mark.parametrize("path", BOOK_PAGES, ids=lambda p: p.stem)
def test_book_page_inline_code_fits_the_page(path: Path):
    long = [f"{path.name}:{number}: {len(span)} characters" for number, span in inline_code(path.read_text())
            if len(span) > CODE_LINE_LIMIT]
    assert not long, f"inline code over {CODE_LINE_LIMIT} characters (make it a code block):\n" + "\n".join(long)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_goals_time_summary_and_exercises_with_answers(path: Path):
    text = path.read_text()
    headings = [h.strip().lower() for h in re.findall(r"^#+ (.+)$", text, re.M)]
    for wanted in ("learning goals", "summary", "exercises"):
        assert any(h.startswith(wanted) for h in headings), f"{path.name}: no '{wanted}' section"
    assert re.search(r"about \d+ (second|minute)s? on a 2-core", text, re.IGNORECASE), \
        f"{path.name}: no running time stated"
    assert "{cite}" in text, f"{path.name}: cites no paper"


GOOD_PAGE = """<html><body><main>
<h1>1. X<a class="headerlink">#</a></h1>
<h2>Learning goals<a class="headerlink">#</a></h2><ul><li>one</li></ul>
<p>About 8 seconds on a 2-core laptop. See <span class="bibtex-citation">[<a class="reference internal"
href="bibliography.html#id2">KALL18</a>]</span>.</p>
<div class="cell"><div class="cell_input"><pre>x = 1</pre></div>
<div class="cell_output"><audio controls="controls"><source src="data:audio/wav;base64,UklGR" /></audio></div></div>
<h2>Summary</h2><h2>Exercises</h2><div class="admonition dropdown"><p>Answer</p></div>
</main></body></html>"""


def test_the_html_check_passes_a_good_page_and_names_each_problem():
    from check_html import chapter_problems  # book/check_html.py

    assert chapter_problems(GOOD_PAGE) == []
    bad = (GOOD_PAGE.replace("Summary", "Recap").replace('class="admonition dropdown"', 'class="admonition"')
           .replace('<a class="reference internal"\nhref="bibliography.html#id2">KALL18</a>', "")
           .replace("x = 1", "x = 1" + " " * 90 + "# long")
           .replace('<source src="data:audio/wav;base64,UklGR" />', "")
           .replace("</main>", '<div class="cell_output">/tmp/pgsound-x/run</div></main>')
           .replace("</main>", '<div class="output stderr"><pre>auto.py:21: TqdmWarning: IProgress not found'
                               '</pre></div></main>'))
    problems = "\n".join(chapter_problems(bad))
    for expected in ("no 'summary' section", "no collapsed answers", "unresolved citation",
                     "no resolved citation", "code line of", "<audio> element without a source", "temporary path",
                     "a warning in an output: 'TqdmWarning: IProgress not found'"):
        assert expected in problems, (expected, problems)


def test_the_exercise_reader_splits_exercises_and_their_cells():
    text = ("## Exercises\n\n### One ★\n\nDo it.\n\n```{code-cell} ipython3\n:tags: [check]\n\nassert 1\n```\n\n"
            "### Two ★★\n\nSay why.\n\n## After\n\n### Not one\n")
    found = exercises(text)
    assert [title for title, _ in found] == ["One ★", "Two ★★"]
    assert [c.kind for c in found[0][1]] == ["markdown", "code"] and "Say why." in found[1][1][0].source


def _is_answer(cell: Cell) -> bool:
    return cell.kind == "markdown" and re.search(r"```\{admonition\} Answer\s*\n:class: dropdown", cell.source)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_have_difficulty_and_gradable_answers(path: Path):
    """Each exercise has a difficulty mark and an answer: a hidden solution cell followed by a check, or prose."""
    found = exercises(path.read_text())
    assert found, f"{path.name}: no '### ' exercises under '## Exercises'"
    graded = 0
    for title, cells in found:
        assert DIFFICULTY.search(title), f"{path.name}: exercise {title!r} has no difficulty mark (★, ★★ or ★★★)"
        assert "*Cost:" in "".join(c.source for c in cells if c.kind == "markdown"), \
            f"{path.name}: exercise {title!r} does not state its cost"
        solutions = [n for n, c in enumerate(cells) if "solution" in c.tags]
        for n in solutions:
            cell = cells[n]
            assert "hide-cell" in cell.tags and cell.metadata.get("jupyter", {}).get("source_hidden") is True, \
                f"{path.name}: the solution of {title!r} is not hidden (tags hide-cell, jupyter.source_hidden)"
            checks = [c for c in cells[n + 1:] if "check" in c.tags]
            assert checks, f"{path.name}: the solution of {title!r} has no check cell after it"
            assert re.search(r"\bassert|assert_close|assert_allclose", checks[0].source), \
                f"{path.name}: the check of {title!r} asserts nothing"
        assert solutions or any(_is_answer(c) for c in cells), \
            f"{path.name}: exercise {title!r} has neither a solution cell nor a dropdown answer"
        graded += bool(solutions)
    assert graded >= MIN_GRADED_EXERCISES, \
        f"{path.name}: {graded} exercises with a solution and a check, at least {MIN_GRADED_EXERCISES} expected"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_tags_its_slides(path: Path):
    cells = chapter_cells(path.read_text())
    tagged = [c for c in cells if {"slide", "slide-code"} & set(c.tags)]
    assert len(tagged) >= MIN_SLIDES, f"{path.name}: {len(tagged)} cells tagged for slides, {MIN_SLIDES} expected"
    assert any(c.kind == "markdown" for c in tagged), f"{path.name}: no Markdown cell tagged 'slide'"


def test_the_book_has_diagrams_with_alt_text_and_captions():
    diagrams = [(path.name, cell) for path in CHAPTERS for cell in chapter_cells(path.read_text())
                if cell.kind == "code" and "diagram" in cell.tags]
    assert len(diagrams) >= MIN_DIAGRAMS, f"{len(diagrams)} diagrams in the book, {MIN_DIAGRAMS} expected"
    for name, cell in diagrams:
        mystnb = cell.metadata.get("mystnb", {})
        alt = mystnb.get("image", {}).get("alt", "")
        assert len(alt.split()) >= 8, f"{name}:{cell.line}: a diagram without alt text of a sentence"
        assert mystnb.get("figure", {}).get("caption"), f"{name}:{cell.line}: a diagram without a caption"
        assert "hide-input" in cell.tags, f"{name}:{cell.line}: a diagram whose drawing code is not hidden"


def page_headings(text: str, bold_leads: bool = False) -> set[str]:
    """A page's headings outside code blocks, without ``N. `` or backticks; with ``bold_leads``, also the
    ``**Lead.**`` that opens a paragraph (the README names some of its parts so)."""
    headings, in_code = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            headings.add(re.sub(r"^\d+\.\s*", "", line.lstrip("#").strip()).replace("`", ""))
        elif not in_code and bold_leads and (lead := re.match(r"^\*\*([^*]+?)\.?\*\*", line)):
            headings.add(lead.group(1))
    return headings


def book_references(source: str) -> list[tuple[str, str]]:
    """``(page, section)`` of each ``(book: chapter N, Section; ...)`` in a module's text; the section is ""
    where only a page is named. Pages are chapter numbers as text, "Introduction" or "README"."""
    text = re.sub(r"\s*\n\s*", " ", source)
    references = []
    for start in re.finditer(r"\(book: ", text):
        i, depth, quoted = start.end(), 1, False
        while i < len(text) and depth:  # to the closing bracket, past any inside quotes
            quoted ^= text[i] == '"'
            depth += (not quoted) * ((text[i] == "(") - (text[i] == ")"))
            i += 1
        for part in text[start.end():i - 1].split(";"):
            part = part.strip()
            if many := re.fullmatch(r"chapters ([\d, and]+)", part):
                references += [(n, "") for n in re.findall(r"\d+", many.group(1))]
                continue
            one = re.fullmatch(r'(?:chapter (\d+)|(Introduction|README))(?:, "?([^"]+)"?)?', part)
            assert one, f"a book reference that names no page: {part!r}"
            references.append((one.group(1) or one.group(2), (one.group(3) or "").replace("`", "")))
    return references


def test_the_book_reference_reader_takes_lists_quotes_and_brackets():
    source = '''"""x (book: chapter 11, "(b) Does the label
        set the pitch?"; chapters 5, 6 and 9; README, "Errors"; Introduction)."""'''
    assert book_references(source) == [("11", "(b) Does the label set the pitch?"), ("5", ""), ("6", ""),
                                       ("9", ""), ("README", "Errors"), ("Introduction", "")]


def test_docstrings_name_sections_the_book_has():
    pages = {path.name[:2].lstrip("0"): page_headings(path.read_text()) for path in CHAPTERS}
    pages["Introduction"] = page_headings((ROOT / "book" / "intro.md").read_text())
    pages["README"] = page_headings((ROOT / "README.md").read_text(), bold_leads=True)
    missing = []
    for module in sorted((ROOT / "pgsound").rglob("*.py")):
        for page, section in book_references(module.read_text()):
            headings = pages.get(page)
            if headings is None or (section and not any(h.startswith(section) for h in headings)):
                missing.append(f"{module.relative_to(ROOT)}: {page}, {section or '(the page)'}")
    assert not missing, "docstrings name sections the book does not have:\n" + "\n".join(missing)
