"""Move every control of an HTML page in headless Chromium and check what it shows and plays.

    python book/check_controls.py PAGE.html [PAGE.html ...]

For each page: every ``pgsound-slider`` (``pgsound.display.media_slider``) is moved to each of its steps; its
picture and, where it has one, its audio source must change with the step. Every ``<audio>`` source on the
page (the sliders' steps included) must decode (``AudioContext.decodeAudioData``). Needs ``chromium`` (Debian's
package) and the ``playwright`` Python package (the test extra), which drives it; prints one line per problem
and exits 1 if there is any.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

# Runs in the page after load: moves each slider through its steps, decodes every audio source, and writes the
# findings as JSON into <pre id="pgsound-control-report">.
PROBE = r"""
<script>
window.addEventListener('load', async function () {
  const report = {sliders: [], audio: [], errors: []};
  const sources = new Set();
  document.querySelectorAll('audio').forEach(a => {
    if (a.getAttribute('src')) sources.add(a.getAttribute('src'));
    a.querySelectorAll('source').forEach(s => s.getAttribute('src') && sources.add(s.getAttribute('src')));
  });
  for (const box of document.querySelectorAll('.pgsound-slider')) {
    const range = box.querySelector('input[type=range]');
    const picture = box.querySelector('img');
    const audio = box.querySelector('audio');
    const seen = {pictures: [], sounds: []};
    for (let i = Number(range.min); i <= Number(range.max); i++) {
      range.value = String(i);
      range.dispatchEvent(new Event('input'));
      seen.pictures.push(picture.src);
      if (audio) { seen.sounds.push(audio.src); sources.add(audio.src); }
    }
    report.sliders.push({id: box.id, steps: seen.pictures.length,
                         pictures: new Set(seen.pictures).size, sounds: new Set(seen.sounds).size,
                         has_audio: !!audio});
  }
  const context = new OfflineAudioContext(1, 1, 16000);  // decodes without an audio device
  for (const src of sources) {
    try {
      const bytes = await (await fetch(src)).arrayBuffer();
      const decoded = await context.decodeAudioData(bytes);
      report.audio.push({ok: true, seconds: decoded.duration});
    } catch (error) {
      report.audio.push({ok: false, error: String(error), src: src.slice(0, 40)});
    }
  }
  const out = document.createElement('pre');
  out.id = 'pgsound-control-report';
  out.textContent = JSON.stringify(report);
  document.body.appendChild(out);
});
</script>
"""


def find_chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def probe_page(page: Path, chromium: str) -> dict:
    """Chromium's report on one page: the sliders it moved and the audio it decoded (through Playwright)."""
    from playwright.sync_api import sync_playwright

    html = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="pgsound-controls-") as folder:
        probed = Path(folder) / page.name
        probed.write_text(html.replace("</body>", PROBE + "</body>") if "</body>" in html else html + PROBE,
                          encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                tab = browser.new_page()
                tab.goto(probed.as_uri())
                tab.wait_for_selector("#pgsound-control-report", state="attached", timeout=120_000)
                return json.loads(tab.inner_text("#pgsound-control-report"))
            finally:
                browser.close()


def problems(report: dict) -> list[str]:
    """What is wrong, from a page's report."""
    found = []
    for slider in report["sliders"]:
        if slider["steps"] > 1 and slider["pictures"] < slider["steps"]:
            found.append(f"slider {slider['id']}: {slider['pictures']} pictures for {slider['steps']} steps")
        if slider["has_audio"] and slider["steps"] > 1 and slider["sounds"] < slider["steps"]:
            found.append(f"slider {slider['id']}: {slider['sounds']} sounds for {slider['steps']} steps")
    for item in report["audio"]:
        if not item["ok"]:
            found.append(f"audio that does not decode: {item['error']} ({item['src']}...)")
    return found


def main(argv: list[str]) -> int:
    chromium = find_chromium()
    if chromium is None:
        print("check_controls: no chromium on this machine (apt-get install chromium)")
        return 1
    failed = 0
    for page in map(Path, argv):
        report = probe_page(page, chromium)
        for problem in problems(report):
            print(f"{page}: {problem}")
            failed += 1
        print(f"{page}: {len(report['sliders'])} slider(s), {len(report['audio'])} audio source(s) decoded")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
