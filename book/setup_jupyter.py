"""Make this environment's JupyterLab open the chapters (``book/*.md``) as notebooks on a double click.

    python book/setup_jupyter.py          # run with the environment's Python (make does it for .venv)

jupytext's server extension (the ``book`` extra installs it) already reads MyST Markdown as notebooks; what it
leaves to the user is JupyterLab's default viewer, which for ``.md`` is the text editor. This writes the setting
jupytext's own ``jupytext-config set-default-viewer`` writes, but into this environment's configuration
(``<sys.prefix>/etc/jupyter/labconfig/default_setting_overrides.json``) instead of the user's home folder, so
it holds for this environment's ``jupyter lab`` and nothing else. Other settings in that file are kept; a
second run changes nothing. Works the same on Linux, macOS and Windows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PLUGIN = "@jupyterlab/docmanager-extension:plugin"
# JupyterLab's file types for .md files and for MyST files; jupytext's notebook view is named "Jupytext Notebook".
VIEWERS = {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}


def settings_file(prefix: str | Path = sys.prefix) -> Path:
    """Where JupyterLab reads default settings for the environment at ``prefix`` (jupyter_config_path's entry)."""
    return Path(prefix) / "etc" / "jupyter" / "labconfig" / "default_setting_overrides.json"


def set_default_viewers(path: Path) -> bool:
    """Add the notebook viewer for Markdown to the settings at ``path``; True when the file changed."""
    settings = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    viewers = settings.setdefault(PLUGIN, {}).setdefault("defaultViewers", {})
    if all(viewers.get(kind) == viewer for kind, viewer in VIEWERS.items()):
        return False
    viewers.update(VIEWERS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return True


def main() -> int:
    path = settings_file()
    changed = set_default_viewers(path)
    print(f"==> JupyterLab opens .md files as notebooks ({'set in' if changed else 'already set in'} {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
