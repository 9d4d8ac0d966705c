"""Turn each chapter into a reveal.js deck: ``make slides`` (``PROFILE`` as ``make book``, ``NAME=07`` to pick).

    python book/make_slides.py [PATTERN] [--cache DIR] [--jobs N] [--out _build/slides]
    python book/make_slides.py --check [PATTERN] [--out _build/slides]

A deck holds what its chapter tags (book/AUTHORING.md, "Slides"): a title slide from the chapter's title, then,
in the chapter's order, one slide per Markdown cell tagged ``slide`` and per code cell tagged ``slide`` (its
outputs) or ``slide-code`` (its code and outputs). Hidden solutions never go on a slide. Equations are typeset by
MathJax, figures and audio players are the executed outputs.

The outputs come from the execution cache that ``make book`` fills (``--cache``, one per profile); a chapter not
in it is executed first, as ``book/run_chapter.py`` executes it, and stored there. Decks are written to
``_build/slides/NN_name.html`` with an ``index.html`` that lists them, and they work offline: reveal.js and
MathJax are copied next to them (``_static/``) from two wheels of the ``book`` extra, ``sphinx-revealjs`` (which
vendors reveal.js) and ``django-static-mathjax`` (MathJax 3, no dependencies). ``--check`` tells whether every
chapter has a deck whose assets resolve; ``make book-check`` runs it.
"""

from __future__ import annotations

import argparse
import html
import importlib.metadata
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import nbformat
from bs4 import BeautifulSoup
from slide_html import chapter_title, slide_cells, slides_html

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
STATIC = "_static"  # the assets' folder, next to the decks
BOOK_TITLE = "pgsound: Progressive Growing of GANs for Sound"

DECK_STYLE = """
.reveal .slides section { height: 100%; overflow-y: auto; text-align: left; font-size: 0.62em; }
.reveal .slides section.title-slide { text-align: center; font-size: 1em; }
.reveal h1, .reveal h2, .reveal h3 { text-transform: none; }
.reveal h1 { font-size: 1.9em; } .reveal h2 { font-size: 1.5em; } .reveal h3 { font-size: 1.15em; }
.reveal img { max-height: 560px; max-width: 100%; margin: 0.2em 0; }
.reveal figure { margin: 0.3em 0; } .reveal figcaption { font-size: 0.75em; color: #555; }
.reveal pre { width: 100%; box-shadow: none; font-size: 0.7em; margin: 0.3em 0; }
.reveal pre.output { background: #f7f7f7; padding: 0.3em 0.5em; white-space: pre-wrap; }
.reveal .literal { font-family: monospace; font-size: 0.95em; background: #f3f3f3; }
.reveal .highlight pre { background: #f5f5ff; padding: 0.3em 0.5em; }
.reveal table { font-size: 0.8em; margin: 0.4em 0; } .reveal audio { height: 2em; }
.reveal .admonition, .reveal details { border-left: 4px solid #6a8fd3; padding: 0.2em 0.7em; margin: 0.4em 0; }
.reveal .admonition-title, .reveal summary { font-weight: bold; }
.reveal .cite { color: #555; font-size: 0.85em; } .reveal .math { overflow-x: auto; }
"""


def deck_html(notebook: nbformat.NotebookNode, book_title: str = BOOK_TITLE, note: str = "",
              warnings: list[str] | None = None) -> str:
    """A whole reveal.js page for one executed chapter; its assets are looked up under ``_static/``."""
    from pygments.formatters import HtmlFormatter

    title = chapter_title(notebook)
    first = (f'<section class="title-slide"><h1>{html.escape(title)}</h1><p>{html.escape(book_title)}</p>'
             + (f'<p><small>{html.escape(note)}</small></p>' if note else "") + "</section>")
    body = "\n".join([first] + [f'<section class="slide">\n{s}\n</section>' for s in slides_html(notebook, warnings)])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{STATIC}/reveal.js/dist/reset.css">
<link rel="stylesheet" href="{STATIC}/reveal.js/dist/reveal.css">
<link rel="stylesheet" href="{STATIC}/reveal.js/dist/theme/white.css">
<style>{HtmlFormatter().get_style_defs(".highlight")}
{DECK_STYLE}</style>
</head>
<body>
<div class="reveal"><div class="slides">
{body}
</div></div>
<script src="{STATIC}/reveal.js/dist/reveal.js"></script>
<script src="{STATIC}/reveal.js/plugin/math/math.js"></script>
<script>
Reveal.initialize({{
  hash: true, slideNumber: "c/t", center: false, width: 1280, height: 800, margin: 0.04,
  plugins: [RevealMath.MathJax3],
  mathjax3: {{
    mathjax: "{STATIC}/mathjax/tex-svg.js",
    tex: {{ inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]] }},
  }},
}});
</script>
</body>
</html>
"""


# --- Assets, the index, the check ------------------------------------------------------------------------------------


def revealjs_folder() -> Path:
    """reveal.js as sphinx-revealjs vendors it (the folder holding ``dist/`` and ``plugin/``)."""
    spec = importlib.util.find_spec("sphinx_revealjs")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("sphinx-revealjs is not installed: pip install -e '.[book]' (make slides does it)")
    package = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(package.glob("**/dist/reveal.js"))
    if not found:
        raise SystemExit(f"no reveal.js under {package}: a sphinx-revealjs this script does not know")
    return found[0].parent.parent


def mathjax_folder() -> Path:
    """MathJax 3's browser components (``es5/``) as django-static-mathjax ships them."""
    try:
        distribution = importlib.metadata.distribution("django-static-mathjax")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit("django-static-mathjax is not installed: pip install -e '.[book]'") from None
    folder = Path(distribution.locate_file("mathjax/static/mathjax/es5"))
    if not (folder / "tex-svg.js").exists():
        raise SystemExit(f"no MathJax tex-svg.js in {folder}: a django-static-mathjax this script does not know")
    return folder


def _mathjax_files_to_skip(folder: str, names: list[str]) -> list[str]:
    """The deck loads tex-svg.js (SVG output: no web fonts, which browsers may refuse from file://) and the
    components it loads on demand; the other combined builds and the HTML-CSS output are left out."""
    here = Path(folder)
    skip = [n for n in names if n.endswith(".map")]
    if here.name == "es5":
        skip += [n for n in names if n.endswith(".js") and n != "tex-svg.js"]
    if here.name == "output":
        skip += [n for n in names if n.startswith("chtml")]
    return skip


def write_assets(out: Path) -> None:
    """reveal.js (the core, its themes and its math plugin) and MathJax into ``out/_static``."""
    static = out / STATIC
    reveal = revealjs_folder()
    target = static / "reveal.js"
    shutil.copytree(reveal / "dist", target / "dist", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.map", "*.esm.js"))
    shutil.copytree(reveal / "plugin" / "math", target / "plugin" / "math", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.esm.js"))
    for licence in sorted(reveal.glob("LICENSE*")):
        shutil.copy2(licence, target / licence.name)
    mathjax = mathjax_folder()
    shutil.copytree(mathjax, static / "mathjax", dirs_exist_ok=True, ignore=_mathjax_files_to_skip)
    if (mathjax.parent / "LICENSE").exists():
        shutil.copy2(mathjax.parent / "LICENSE", static / "mathjax" / "LICENSE")


def write_index(out: Path, book_title: str) -> Path:
    """``index.html``: every deck in ``out``, by its chapter title."""
    decks = sorted(p for p in out.glob("[0-9][0-9]_*.html"))
    items = []
    for deck in decks:
        found = re.search(r"<title>(.*?)</title>", deck.read_text(encoding="utf-8"), re.S)
        title = found.group(1) if found else deck.stem
        items.append(f'<li><a href="{deck.name}">{title}</a></li>')
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(book_title)}: '
            f"slides</title>\n<style>body {{ font-family: sans-serif; max-width: 44em; margin: 3em auto; }}"
            f"</style></head>\n<body><h1>{html.escape(book_title)}: slides</h1>\n"
            "<p>One reveal.js deck per chapter. Arrow keys move, <kbd>F</kbd> shows a deck full screen, "
            "<kbd>Esc</kbd> shows all its slides.</p>\n"
            f"<ul>\n{chr(10).join(items)}\n</ul></body></html>\n")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _local(reference: str) -> bool:
    return bool(reference) and not re.match(r"^([a-z][a-z0-9+.-]*:|//|#)", reference, re.I)


CSS_REFERENCE = re.compile(r"""url\(\s*["']?([^"')\s]+)|@import\s+["']([^"']+)["']""")


def deck_problems(deck: Path) -> list[str]:
    """The assets a deck names that are not there: its stylesheets, scripts, images, and the files they name."""
    text = deck.read_text(encoding="utf-8")
    soup = BeautifulSoup(text, "html.parser")
    references = [tag.get("href") for tag in soup.find_all("link")]
    references += [tag.get("src") for tag in soup.find_all(["script", "img", "source", "audio"])]
    references += re.findall(r'mathjax:\s*"([^"]+)"', text)  # the script reveal.js's math plugin loads
    problems = []
    todo = [(deck.parent / r, r) for r in references if _local(r)]
    seen = set()
    while todo:
        path, named_by = todo.pop()
        path = Path(str(path).split("#")[0].split("?")[0]).resolve()
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            problems.append(f"{deck.name}: {named_by} is missing")
        elif path.suffix == ".css":  # a stylesheet's imports and fonts
            for found in CSS_REFERENCE.finditer(path.read_text(errors="replace")):
                inner = found.group(1) or found.group(2)
                if _local(inner):
                    todo.append((path.parent / inner, f"{inner} (in {path.name})"))
    return problems


def check(out: Path, chapters: list[Path]) -> list[str]:
    """What is wrong with the decks in ``out``: a chapter without one, a deck whose assets do not resolve."""
    problems = [f"no deck for {path.stem} ({out / (path.stem + '.html')})" for path in chapters
                if not (out / f"{path.stem}.html").is_file()]
    if not (out / "index.html").is_file():
        problems.append(f"no index page in {out}")
    for deck in sorted(out.glob("[0-9][0-9]_*.html")):
        problems += deck_problems(deck)
    return problems


def write_deck(notebook: nbformat.NotebookNode, out: Path, name: str, note: str = "") -> tuple[Path, list[str]]:
    """Write one executed notebook's deck as ``out/name.html``; returns it and the warnings.

    The deck's assets are :func:`write_assets`' (once for all the decks in ``out``).
    """
    out.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    deck = out / f"{name}.html"
    deck.write_text(deck_html(notebook, note=note, warnings=warnings), encoding="utf-8")
    return deck, warnings


def executed_chapter(cache_folder: Path, path: Path) -> nbformat.NotebookNode | None:
    """The chapter's current text with the cache's outputs (None when the cache has no run of its code)."""
    from jupyter_cache import get_cache
    from run_chapter import chapter_notebook

    try:
        _, notebook = get_cache(str(cache_folder)).merge_match_into_notebook(chapter_notebook(path))
    except KeyError:
        return None
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pattern", nargs="?", default="", help="part of the chapter file names (default: all)")
    parser.add_argument("--cache", type=Path, help="the execution cache of make book (default: _build/"
                        ".jupyter_cache-PROFILE)")
    parser.add_argument("--jobs", type=int, default=1, help="chapters executed at a time when not cached")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "slides", help="where the decks go")
    parser.add_argument("--check", action="store_true", help="only check that every chapter has a deck")
    args = parser.parse_args(argv)
    from run_chapter import chapter_paths, run

    chapters = chapter_paths(args.pattern)
    if args.check:
        problems = check(args.out, chapters)
        for problem in problems:
            print(problem)
        print(f"{len(chapters)} chapters, {len(problems)} problem(s) in the decks under {args.out}")
        return 1 if problems else 0

    from pgsound.profile import current_profile, use_pretrained

    profile = current_profile()
    # The Makefile's CACHE: one per profile and per PGSOUND_PRETRAINED.
    suffix = "-pretrained" if use_pretrained() else ""
    cache_folder = args.cache or ROOT / "_build" / f".jupyter_cache-{profile}{suffix}"
    cache_folder.mkdir(parents=True, exist_ok=True)
    # Executes only the chapters the cache does not hold, and stores them there (make book then reuses them).
    executed_ok = run(args.pattern, profile, cache_folder, max(1, args.jobs)) == 0
    note = f"PGSOUND_PROFILE={profile}" + (", shipped runs" if use_pretrained() else "")
    write_assets(args.out)
    written = 0
    for path in chapters:
        notebook = executed_chapter(cache_folder, path)
        if notebook is None:
            print(f"{path.stem:<28} no executed notebook in {cache_folder}: no deck", file=sys.stderr)
            continue
        deck, warnings = write_deck(notebook, args.out, path.stem, note)
        for warning in warnings:
            print(f"{path.stem}: {warning}", file=sys.stderr)
        written += 1
        print(f"{path.stem:<28} {len(slide_cells(notebook)) + 1:3d} slides -> {deck}")
    index = write_index(args.out, BOOK_TITLE)
    print(f"{written} deck(s); open {index}")
    return 0 if executed_ok and written == len(chapters) else 1


if __name__ == "__main__":
    sys.exit(main())
