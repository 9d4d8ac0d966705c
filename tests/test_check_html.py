"""book/check_html.py's checks of diagrams and hidden solutions, on the markup Jupyter Book 1 writes.

The cells below are what myst-nb 1.4 and Jupyter Book 1.0.4 render for a ``diagram`` cell (tags
``hide-input, diagram``, ``mystnb.image.alt`` and ``mystnb.figure.caption``) and for a solution cell (tags
``hide-cell, solution``), trimmed; the rest of a chapter page is tests/test_book_text.py's GOOD_PAGE.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
sys.path.insert(0, str(ROOT / "tests"))

from check_html import chapter_problems  # noqa: E402  (book/check_html.py)
from test_book_text import GOOD_PAGE  # noqa: E402

IMAGE = "_images/9984f5431819b57f6793a906049d34e48f.png"
ALT = "Two boxes joined by an arrow: the generator feeds the critic."

DIAGRAM = f"""<div class="cell tag_hide-input tag_diagram docutils container">
<details class="admonition hide above-input"><summary aria-label="Toggle hidden content">
<p class="collapsed admonition-title">Show code cell source</p></summary>
<div class="cell_input docutils container"><div class="highlight"><pre>fig = draw_blocks()</pre></div></div>
</details>
<div class="cell_output docutils container"><figure class="align-default" id="fig-blocks">
<img alt="{ALT}" src="{IMAGE}"/>
<figcaption><p><span class="caption-number">Fig. 1 </span><span class="caption-text">The blocks.</span></p>
</figcaption></figure></div></div>"""

SOLUTION = """<div class="cell tag_hide-cell tag_solution docutils container">
<details class="admonition hide above-input"><summary aria-label="Toggle hidden content">
<p class="collapsed admonition-title">Show code cell content</p></summary>
<div class="cell_input docutils container"><div class="highlight"><pre>def frame_count(n, n_fft, hop): ...</pre>
</div></div>
<div class="cell_output docutils container"><div class="output stream"><pre>512</pre></div></div>
</details></div>"""


def page(*cells: str) -> str:
    return GOOD_PAGE.replace("<h2>Summary</h2>", "".join(cells) + "<h2>Summary</h2>")


def test_a_page_with_a_described_diagram_and_a_collapsed_solution_passes():
    assert chapter_problems(page(DIAGRAM, SOLUTION)) == []


def test_a_diagram_without_alt_text_is_named():
    # myst-nb without mystnb.image.alt: docutils writes the image's path as its alt
    for alt in (IMAGE, "", "   ", "9984f5431819b57f6793a906049d34e48f.png"):
        problems = chapter_problems(page(DIAGRAM.replace(f'alt="{ALT}"', f'alt="{alt}"')))
        assert problems == ["a diagram without alt text: 'fig = draw_blocks()'"], (alt, problems)
    problems = chapter_problems(page(DIAGRAM.replace(f'alt="{ALT}" ', "")))
    assert problems == ["a diagram without alt text: 'fig = draw_blocks()'"]


def test_a_diagram_without_a_caption_or_a_figure_is_named():
    no_caption = DIAGRAM.split("<figcaption>")[0] + "</figure></div></div>"
    assert chapter_problems(page(no_caption)) == ["a diagram without a caption: 'fig = draw_blocks()'"]
    no_figure = DIAGRAM.split('<div class="cell_output')[0] + "</div>"
    assert chapter_problems(page(no_figure)) == ["a diagram cell without a figure: 'fig = draw_blocks()'"]


def test_a_figure_outside_a_diagram_cell_needs_nothing_more():
    other = DIAGRAM.replace(" tag_diagram", "").replace(f'alt="{ALT}"', f'alt="{IMAGE}"')
    assert chapter_problems(page(other)) == []


def test_a_solution_shown_open_is_named():
    open_toggle = SOLUTION.replace('<details class="admonition hide above-input">',
                                   '<details class="admonition hide above-input" open="">')
    no_toggle = ('<div class="cell tag_solution docutils container"><div class="cell_input docutils container">'
                 "<pre>def frame_count(n, n_fft, hop): ...</pre></div></div>")
    # hide-input alone collapses the code and leaves the outputs (the answer's numbers) in view
    outputs_shown = SOLUTION.replace("</div></div>\n<div class=\"cell_output", "</div></div></details>\n"
                                     '<div class="cell_output').replace("</details></div>", "</div>")
    for cell in (open_toggle, no_toggle, outputs_shown):
        assert chapter_problems(page(cell)) == ["a solution shown open: 'def frame_count(n, n_fft, hop): ...'"], cell
