"""``make slides`` (book/make_slides.py): a reveal.js deck from what a chapter tags, with its executed outputs.

The decks are built from a small executed notebook written here, so nothing executes; the chapters themselves
are only read, to check that their tagged Markdown renders.
"""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))

import make_slides  # noqa: E402  (book/make_slides.py)

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))


def _png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _code(source: str, tags: list[str], outputs: list, **metadata) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": tags, **metadata})
    cell.outputs = outputs
    return cell


def _stdout(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _markdown(source: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source, metadata={"tags": tags} if tags else {})


def executed_notebook() -> nbformat.NotebookNode:
    """A chapter as make book's cache gives it back: tags, a glued value, a figure, a sound, a hidden solution."""
    glued = nbformat.v4.new_output(
        "display_data", data={"application/papermill.record/text/plain": "0.12345"},
        metadata={"scrapbook": {"name": "critic_loss", "mime_prefix": "application/papermill.record/"}})
    figure = nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})
    sound = nbformat.v4.new_output("display_data", data={
        "text/html": '<audio controls><source src="data:audio/wav;base64,UklGRg==" type="audio/wav"></audio>',
        "text/plain": "<Audio>"})
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        _markdown("# 9. A chapter for the test\n\n## Learning goals\n\nUNTAGGED_PROSE"),
        _code("UNTAGGED_SOURCE = glue('critic_loss', 0.12345)", [], [glued, _stdout("UNTAGGED_OUTPUT\n")]),
        _markdown("## The critic's loss\n\nIt ends at {glue:text}`critic_loss:.2f` {cite}`karras2018progressive`."
                  "\n\n$$ L = \\mathbb{E}[D(x)] $$\n\nand inline $x^2$, as [chapter 3](03_gans_in_2d.md) and "
                  "[the papers](bibliography.md) say.", ["slide"]),
        _code("FIGURE_SOURCE = 1", ["slide", "hide-input"], [figure],
              mystnb={"image": {"alt": "A red rectangle that stands for the figure."},
                      "figure": {"caption": "FIGURE_CAPTION"}}),
        _code("print('SLIDE_CODE_OUTPUT')  # SLIDE_CODE_SOURCE", ["slide-code"], [_stdout("SLIDE_CODE_OUTPUT\n"),
                                                                               sound]),
        _markdown("## Exercises\n\n### Write it ★\n\nUNTAGGED_EXERCISE"),
        _code("SOLUTION_SOURCE = 2", ["hide-cell", "solution", "slide-code"], [_stdout("SOLUTION_OUTPUT\n")],
              jupyter={"source_hidden": True}),
        _code("assert SOLUTION_SOURCE == 2", ["check"], []),
        _markdown("**Fade-in, in bold**\n\nA passage.\n\n```{admonition} Answer\n:class: dropdown\n"
                  "DROPDOWN_ANSWER\n```", ["slide"]),
    ]
    return notebook


@pytest.fixture(scope="module")
def deck(tmp_path_factory) -> tuple[Path, str, list[str]]:
    out = tmp_path_factory.mktemp("slides")
    make_slides.write_assets(out)
    path, warnings = make_slides.write_deck(executed_notebook(), out, "09_test_chapter", note="smoke")
    make_slides.write_index(out, "The book")
    return path, path.read_text(encoding="utf-8"), warnings


def _slides(text: str) -> list[BeautifulSoup]:
    return BeautifulSoup(text, "html.parser").select(".reveal .slides > section")


def test_the_deck_has_a_title_slide_and_one_slide_per_tagged_cell(deck):
    _, text, warnings = deck
    slides = _slides(text)
    assert len(slides) == 1 + 4, [s.get_text(" ", strip=True)[:60] for s in slides]
    assert slides[0].find("h1").get_text() == "9. A chapter for the test"
    assert [s.find("h2").get_text(strip=True) for s in (slides[1], slides[4])] == [
        "The critic's loss", "Fade-in, in bold"]
    assert not any(s.find("section") for s in slides), "a section inside a slide is a reveal.js sub-slide"
    assert warnings == []


def test_tagged_markdown_is_rendered_with_glue_citations_and_math(deck):
    _, text, _ = deck
    first = _slides(text)[1]
    words = first.get_text(" ", strip=True)
    assert "It ends at 0.12" in words and "Karras et al. 2018" in words
    assert "\\(x^2\\)" in str(first) and "\\mathbb{E}[D(x)]" in str(first)
    assert "tex-svg.js" in text and "RevealMath.MathJax3" in text
    assert [a["href"] for a in first.find_all("a")] == ["03_gans_in_2d.html"], "a chapter's link: its deck"
    assert "the papers say" in words, "a page without a deck: its link's text"
    assert [a["href"] for a in first.find_all("a")] == ["03_gans_in_2d.html"], "a chapter's link: its deck"
    assert "the papers say" in words, "a page without a deck: its link's text"


def test_tagged_outputs_appear_with_alt_text_caption_and_sound(deck):
    _, text, _ = deck
    figure = _slides(text)[2]
    image = figure.find("img")
    assert image["src"].startswith("data:image/png;base64,")
    assert image["alt"] == "A red rectangle that stands for the figure."
    assert figure.find("figcaption").get_text(strip=True) == "FIGURE_CAPTION"
    assert "FIGURE_SOURCE" not in str(figure), "a cell tagged slide shows its outputs, not its code"
    code = _slides(text)[3]
    assert "SLIDE_CODE_SOURCE" in code.get_text() and "SLIDE_CODE_OUTPUT" in code.get_text()
    assert code.find("audio").find("source")["src"].startswith("data:audio/wav")


def test_untagged_cells_and_hidden_solutions_stay_off_the_slides(deck):
    _, text, _ = deck
    for absent in ("UNTAGGED_PROSE", "UNTAGGED_SOURCE", "UNTAGGED_OUTPUT", "UNTAGGED_EXERCISE",
                   "SOLUTION_SOURCE", "SOLUTION_OUTPUT", "0.12345"):
        assert absent not in text, absent
    answer = _slides(text)[4].find("details")
    assert answer is not None and "DROPDOWN_ANSWER" in answer.get_text() and not answer.has_attr("open")


def test_the_deck_assets_resolve_and_the_check_names_what_is_missing(deck):
    path, _, _ = deck
    out = path.parent
    chapter = Path("09_test_chapter.md")
    assert make_slides.check(out, [chapter]) == []
    assert "09_test_chapter.html" in (out / "index.html").read_text()
    assert make_slides.check(out, [chapter, Path("10_missing.md")]) == [
        f"no deck for 10_missing ({out / '10_missing.html'})"]
    mathjax = out / make_slides.STATIC / "mathjax" / "tex-svg.js"
    mathjax.rename(mathjax.with_suffix(".bak"))
    try:
        assert any("tex-svg.js is missing" in p for p in make_slides.check(out, [chapter]))
    finally:
        mathjax.with_suffix(".bak").rename(mathjax)


def test_a_stylesheets_fonts_are_checked_too(tmp_path):
    (tmp_path / "a.css").write_text('@import url(./fonts/f.css); p { background: url("img.png"); }')
    (tmp_path / "fonts").mkdir()
    (tmp_path / "fonts" / "f.css").write_text("@font-face { src: url(f.woff); }")
    (tmp_path / "img.png").write_bytes(b"")
    deck = tmp_path / "01_x.html"
    deck.write_text('<html><head><link rel="stylesheet" href="a.css"></head><body><img src="data:,">'
                    '<script src="https://example.org/x.js"></script></body></html>')
    assert make_slides.deck_problems(deck) == ["01_x.html: f.woff (in f.css) is missing"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapters_tagged_markdown_renders_without_a_warning(path: Path):
    """The MyST a chapter puts on its slides is MyST the deck knows (glued values exist only once executed)."""
    notebook = jupytext.read(path)
    warnings: list[str] = []
    make_slides.slides_html(notebook, warnings)
    assert [w for w in warnings if "no glued value" not in w] == []
