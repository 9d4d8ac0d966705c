"""A chapter's slide-tagged cells as reveal.js slides: MyST Markdown through docutils, code, executed outputs.

``book/make_slides.py`` assembles the decks from these slides (book/AUTHORING.md, "Slides"). The book's roles are
resolved here as the HTML book resolves them: ``{glue:text}`` from the executed notebook's glued values,
``{cite}`` from ``references.bib``, ``{ref}``/``{numref}`` as plain text.
"""

from __future__ import annotations

import base64
import html
import io
import re
from functools import cache
from pathlib import Path

import nbformat
from bs4 import BeautifulSoup
from docutils import nodes
from docutils.core import publish_parts
from docutils.parsers.rst import roles

BOOK = Path(__file__).resolve().parent
SLIDE_TAGS = ("slide", "slide-code")
NEVER_ON_A_SLIDE = ("solution", "remove-cell")  # a solution is the learner's to write
# The MyST syntax the book enables (_config.yml, parse), less linkify and substitution, which no chapter uses.
MYST_EXTENSIONS = ["amsmath", "dollarmath", "colon_fence", "deflist", "html_image"]
# Output formats in the order the book prefers them (myst-nb's HTML priority, less the widget view).
MIME_ORDER = ("text/html", "image/svg+xml", "image/png", "image/jpeg", "text/markdown", "text/latex", "text/plain")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PAGE_LINK = re.compile(r"^(?:\./)?([\w-]+)\.(?:md|ipynb)(#.*)?$")  # a link to another page of the book
CHAPTER_NAME = re.compile(r"^\d\d_")


# --- Markdown: MyST through docutils, with the book's roles -------------------------------------------------------


def _split_title(text: str) -> tuple[str, str]:
    """``title <target>`` -> (title, target); ``target`` -> (target, target)."""
    found = re.fullmatch(r"\s*(.*?)\s*<([^<>]+)>\s*", text, re.S)
    return (found.group(1) or found.group(2), found.group(2)) if found else (text, text)


def _glue_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{glue:text}`name:format``` and ``{glue}`name```: the glued value's text, formatted as the book does."""
    from myst_nb.core.variables import format_plain_text

    glue = inliner.document.settings.slide_glue
    key, _, spec = text.rpartition(":") if ":" in text else (text, "", "s")
    output = glue.get(key)
    if output is None or "text/plain" not in output.get("data", {}):
        message = inliner.reporter.warning(f"no glued value {key!r} in this chapter", line=lineno)
        return [nodes.inline(text=f"[{key}]")], [message]
    value = format_plain_text(output["data"]["text/plain"], spec or "s")
    return [nodes.inline(text=value, classes=["pasted-text"])], []


def _cite_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{cite}`a,b```: [Author et al. year; ...] from book/references.bib."""
    labels = citation_labels()
    keys = [k.strip() for k in text.split(",") if k.strip()]
    shown = "; ".join(labels.get(k, k) for k in keys)
    return [nodes.inline(text=f"[{shown}]", classes=["cite"])], []


def _reference_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """Sphinx's cross-references (``{ref}``, ``{numref}``, ``{doc}``, ...): a deck shows their title as text."""
    title, target = _split_title(text)
    shown = f"({target})" if name == "eq" else " ".join(title.replace("{number}", "").split()) or target
    return [nodes.emphasis(text=shown)], []


for _name in ("glue", "glue:", "glue:any", "glue:text"):
    roles.register_local_role(_name, _glue_role)
roles.register_local_role("cite", _cite_role)
for _name in ("ref", "numref", "doc", "eq", "term", "download", "any", "external"):
    roles.register_local_role(_name, _reference_role)


@cache
def citation_labels(bib: Path = BOOK / "references.bib") -> dict[str, str]:
    """Each key of the bibliography as ``Author year``, ``A and B year`` or ``A et al. year``."""
    from pybtex.database import parse_file
    from pybtex.richtext import Text

    labels = {}
    for key, entry in parse_file(str(bib)).entries.items():
        names = [Text.from_latex(" ".join(p.last_names) or str(p)).render_as("text")
                 for p in entry.persons.get("author", [])]
        who = (names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2
               else f"{names[0]} et al." if names else key)
        labels[key] = f"{who} {entry.fields.get('year', '')}".strip()
    return labels


def render_markdown(text: str, glue: dict | None = None, warnings: list[str] | None = None) -> str:
    """A Markdown cell (MyST) as an HTML fragment; what docutils reports goes to ``warnings``."""
    parts = publish_parts(
        text,
        parser=_myst_parser(),
        writer_name="html5",
        settings_overrides={
            "myst_enable_extensions": MYST_EXTENSIONS,
            "myst_suppress_warnings": ["myst.header"],
            "myst_all_links_external": True,  # links to other pages: rewritten below
            "math_output": "MathJax",  # \( \) and \begin{equation*}: the deck's MathJax typesets them
            "doctitle_xform": False,
            "initial_header_level": 2,
            "section_self_link": False,
            "syntax_highlight": "short",  # pygments classes, as in the code cells
            "report_level": 2,
            "halt_level": 5,
            "warning_stream": io.StringIO(),
            "slide_glue": glue or {},
        },
    )
    soup = BeautifulSoup(parts["body"], "html.parser")
    for message in soup.select(".system-message"):
        if warnings is not None:
            warnings.append(" ".join(message.get_text(" ", strip=True).split()))
        message.decompose()
    for admonition in soup.select(".admonition.dropdown"):  # collapsed in the book, collapsed here
        title = admonition.select_one(".admonition-title")
        summary = soup.new_tag("summary")
        summary.string = title.get_text(strip=True) if title else "Details"
        if title:
            title.decompose()
        admonition.name = "details"
        admonition.insert(0, summary)
    for link in soup.find_all("a", href=PAGE_LINK):
        page, anchor = PAGE_LINK.match(link["href"]).groups()
        if CHAPTER_NAME.match(page):  # another chapter: its deck
            link["href"] = f"{page}.html{anchor or ''}"
        else:  # a page with no deck (the bibliography): its text
            link.unwrap()
    for section in soup.find_all("section"):  # reveal.js reads a <section> inside a slide as another slide
        section.name = "div"
        section["class"] = section.get("class", []) + ["section"]
    return str(soup)


def _myst_parser():
    from myst_parser.parsers.docutils_ import Parser

    return Parser()


def as_slide_title(fragment: str) -> str:
    """The fragment's first heading, or a first paragraph that is all bold, as the slide's <h2>; others <h3>."""
    soup = BeautifulSoup(fragment, "html.parser")
    first = next((el for el in soup.find_all(True) if el.name not in ("div",)), None)
    if first is not None and first.name == "p":
        children = [c for c in first.contents if not (isinstance(c, str) and not c.strip())]
        if len(children) == 1 and getattr(children[0], "name", None) == "strong":
            first.name = "h2"
            children[0].unwrap()
    elif first is not None and re.fullmatch(r"h[1-6]", first.name):
        first.name = "h2"
    for heading in soup.find_all(re.compile(r"^h[1-6]$")):
        if heading is not first:
            heading.name = "h3"
    return str(soup)


# --- Code cells: their source and their outputs ------------------------------------------------------------------


def render_code(source: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(source, PythonLexer(), HtmlFormatter(cssclass="code highlight"))


def _image(mime: str, data: str, metadata: dict, alt: str) -> str:
    if mime == "image/svg+xml":
        data = base64.b64encode(data.encode()).decode()
    size = " ".join(f'{k}="{int(v)}"' for k, v in metadata.get(mime, {}).items() if k in ("width", "height"))
    return f'<img src="data:{mime};base64,{"".join(data.split())}" alt="{html.escape(alt)}" {size}>'


def render_outputs(cell: nbformat.NotebookNode, glue: dict | None = None) -> str:
    """A code cell's outputs as HTML: stdout, figures (with the cell's alt text and caption), tables, sound."""
    mystnb = cell.metadata.get("mystnb", {})
    alt = mystnb.get("image", {}).get("alt", "")
    caption = mystnb.get("figure", {}).get("caption", "")
    pieces: list[str] = []
    stdout = "".join(o.get("text", "") for o in cell.get("outputs", [])
                     if o.output_type == "stream" and o.get("name") == "stdout")
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            if output.get("name") == "stdout" and stdout:  # one block for the cell's prints, as the book
                pieces.append(f'<pre class="output">{html.escape(ANSI_ESCAPE.sub("", stdout))}</pre>')
                stdout = ""
            continue  # stderr: warnings belong in the package, not on a slide
        if output.output_type not in ("display_data", "execute_result"):
            continue
        data = output.get("data", {})
        mime = next((m for m in MIME_ORDER if m in data), None)  # a value glued unseen has none of them
        if mime is None or "application/vnd.jupyter.widget-view+json" in data:  # a widget needs a kernel
            continue
        content = data[mime]
        content = "".join(content) if isinstance(content, list) else content
        if mime == "text/html":
            pieces.append(f'<div class="output html">{content}</div>')
        elif mime.startswith("image/"):
            image = _image(mime, content, output.get("metadata", {}), alt)
            pieces.append(f'<figure>{image}<figcaption>{render_inline(caption, glue)}</figcaption></figure>'
                          if caption else image)
        elif mime == "text/markdown":
            pieces.append(render_markdown(content, glue))
        elif mime == "text/latex":
            pieces.append(f'<div class="math">{html.escape(content)}</div>')
        else:
            pieces.append(f'<pre class="output">{html.escape(ANSI_ESCAPE.sub("", content))}</pre>')
    return "\n".join(pieces)


def render_inline(text: str, glue: dict | None = None) -> str:
    """A caption: Markdown whose one paragraph loses its <p>."""
    fragment = render_markdown(text, glue).strip()
    found = re.fullmatch(r"<p>(.*)</p>", fragment, re.S)
    return found.group(1) if found else fragment


# --- The deck ------------------------------------------------------------------------------------------------------


def glue_data(notebook: nbformat.NotebookNode) -> dict[str, dict]:
    """Every value the chapter glues (myst-nb's ``glue``), by name, its formats without the hidden prefix."""
    found = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record = output.get("metadata", {}).get("scrapbook")
            if record:
                prefix = len(record.get("mime_prefix", ""))
                found[record["name"]] = {"data": {k[prefix:]: v for k, v in output.get("data", {}).items()}}
    return found


def chapter_title(notebook: nbformat.NotebookNode) -> str:
    for cell in notebook.cells:
        found = re.search(r"^# (.+)$", cell.source, re.M) if cell.cell_type == "markdown" else None
        if found:
            return found.group(1).strip()
    return "Untitled chapter"


def slide_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The cells a chapter tags for its deck, in order (book/AUTHORING.md, "Slides")."""
    def tags(cell):
        return set(cell.metadata.get("tags", []))

    return [c for c in notebook.cells if tags(c) & set(SLIDE_TAGS) and not tags(c) & set(NEVER_ON_A_SLIDE)]


def slides_html(notebook: nbformat.NotebookNode, warnings: list[str] | None = None) -> list[str]:
    """Each tagged cell as the inner HTML of one slide."""
    glue = glue_data(notebook)
    slides = []
    for cell in slide_cells(notebook):
        if cell.cell_type == "markdown":
            slides.append(as_slide_title(render_markdown(cell.source, glue, warnings)))
        else:
            code = render_code(cell.source) if "slide-code" in cell.metadata.get("tags", []) else ""
            slides.append(code + render_outputs(cell, glue))
    return slides
