"""The environment's JupyterLab opens a chapter as a notebook, runs its cells, and renders its MyST.

One headless Jupyter server (this environment's, on a loopback port, with a token) serves the repository: its
contents API must give a chapter's MyST Markdown as a notebook (jupytext's contents manager), a kernel must run
the chapter's first code cell, JupyterLab's default viewer for ``.md`` must be jupytext's notebook
(``book/setup_jupyter.py``, which ``make`` runs), and in Chromium the chapter must open as a notebook with its
admonitions and citations rendered by jupyterlab-myst.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))

from check_controls import find_chromium  # noqa: E402

CHAPTER = "book/01_sound_as_pictures.md"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("jupyterlab", "jupytext", "jupyterlab_myst")),
    reason="needs the book extra's JupyterLab, jupytext and jupyterlab-myst (pip install -e '.[book]')")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A JupyterLab server on 127.0.0.1 with a token; ``get`` and ``post`` call its REST API."""

    def __init__(self, folder: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        settings = folder / "settings" / "@jupyterlab" / "notebook-extension"
        settings.mkdir(parents=True)
        # Every cell rendered at once, not only those scrolled into view: the admonitions are at the chapter's end.
        (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        # The user's own Jupyter configuration stays out: only this environment's (sys.prefix) counts.
        env = os.environ | {"JUPYTER_CONFIG_DIR": str(folder / "config"), "JUPYTER_RUNTIME_DIR": str(folder / "rt"),
                            "PGSOUND_PROFILE": "smoke"}
        self.log = open(folder / "server.log", "w")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={ROOT}", f"--LabApp.user_settings_dir={folder / 'settings'}",
             f"--LabApp.workspaces_dir={folder / 'workspaces'}", "--LabApp.news_url=None",
             # Nothing reaches past this machine: no update check, no extension index.
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}")
            try:
                self.get("/api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer within {seconds} s")

    def request(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if body is None else "POST",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def get(self, path: str) -> dict:
        return self.request(path)

    def post(self, path: str, body: dict) -> dict:
        return self.request(path, body)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jupyter")
    running = Server(folder)
    try:
        running.wait()
        yield running
    except Exception:
        print((folder / "server.log").read_text()[-3000:])
        raise
    finally:
        running.stop()


@pytest.mark.parametrize("chapter", sorted(p.name for p in (ROOT / "book").glob("[0-9][0-9]_*.md")))
def test_every_chapter_opens_as_a_notebook_through_the_contents_api(server, chapter):
    model = server.get(f"/api/contents/book/{chapter}?type=notebook&content=1")
    assert model["type"] == "notebook" and model["format"] == "json"
    cells = model["content"]["cells"]
    kinds = {c["cell_type"] for c in cells}
    assert len(cells) > 20 and kinds == {"markdown", "code"}
    assert cells[0]["source"].startswith(f"# {int(chapter[:2])}. ")


def execute(server, kernel_id: str, code: str, seconds: float = 120) -> tuple[dict, list[dict]]:
    """Run ``code`` in a kernel over the server's websocket: (the execute_reply's content, the iopub messages)."""
    import websocket  # websocket-client: a jupyter_server dependency

    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels",
                                     header=[f"Authorization: token {server.token}"], timeout=seconds)
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": session, "msg_type": "execute_request",
                   "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    reply, iopub, idle = None, [], False
    deadline = time.monotonic() + seconds
    try:
        while (reply is None or not idle) and time.monotonic() < deadline:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["channel"] == "shell" and message["msg_type"] == "execute_reply":
                reply = message["content"]
            elif message["channel"] == "iopub":
                iopub.append(message)
                idle = idle or (message["msg_type"] == "status" and message["content"]["execution_state"] == "idle")
    finally:
        ws.close()
    assert reply is not None, f"no execute_reply within {seconds} s"
    return reply, iopub


def test_a_kernel_runs_the_chapters_first_code_cell(server):
    cells = server.get(f"/api/contents/{CHAPTER}?type=notebook&content=1")["content"]["cells"]
    first = next(c["source"] for c in cells if c["cell_type"] == "code")
    kernel = server.post("/api/kernels", {"name": "python3", "path": "book"})
    reply, iopub = execute(server, kernel["id"], first)
    errors = [m["content"] for m in iopub if m["msg_type"] == "error"]
    assert reply["status"] == "ok", errors
    results = [m["content"]["data"]["text/plain"] for m in iopub if m["msg_type"] == "execute_result"]
    assert results and results[-1].startswith("SpectrogramConfig(")  # the cell ends with `config`
    profile, _ = execute(server, kernel["id"], "from pgsound.profile import current_profile; current_profile()")
    assert profile["status"] == "ok"


def test_jupyterlab_opens_markdown_with_jupytexts_notebook(server):
    settings = server.get("/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    viewers = settings["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("markdown") == "Jupytext Notebook", \
        "run book/setup_jupyter.py with this environment's Python (make does)"


CHROMIUM = find_chromium()

# Runs in JupyterLab's page: what the Markdown cells show, as jupyterlab-myst rendered them.
RENDERED = """() => {
  const rendered = [...document.querySelectorAll('.jp-MarkdownCell .myst')];  // jupyterlab-myst's output
  const text = rendered.map(e => e.innerText).join('\\n');
  const admonitions = document.querySelectorAll('.jp-MarkdownCell [class*="admonition"]').length;
  const citations = [...document.querySelectorAll('.jp-MarkdownCell span, .jp-MarkdownCell a, .jp-MarkdownCell cite')]
      .filter(e => e.children.length <= 1 && e.textContent.trim() === 'karras2018progressive').length;
  return {cells: rendered.length, text: text, admonitions: admonitions, citations: citations,
          editors: document.querySelectorAll('.jp-FileEditor').length};
}"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium; .ci/run installs it)")
def test_jupyterlab_shows_the_chapter_as_a_notebook_with_admonitions_and_citations_rendered(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.goto(f"{server.url}/lab/tree/{CHAPTER}?reset&token={server.token}")
            tab.wait_for_selector(".jp-Notebook .jp-MarkdownCell [class*='admonition']", state="attached",
                                  timeout=90_000)
            found = tab.evaluate(RENDERED)
        finally:
            browser.close()
    assert found["editors"] == 0, "the chapter opened in the text editor, not as a notebook"
    assert found["cells"] > 20 and "Learning goals" in found["text"]
    assert found["admonitions"] > 0 and found["citations"] > 0
    for raw in ("{cite}", "```{admonition}", "{glue:text}"):  # MyST shown as typed is MyST not rendered
        assert raw not in found["text"]
