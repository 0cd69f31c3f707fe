"""The course in a real browser: notebook 02 run in JupyterLab by headless Chromium, and an exercise answered.

nbval proves the notebooks' Python; only a browser proves the widgets render. This test starts
JupyterLab on 127.0.0.1 at a free port, opens a copy of notebook 02 in headless Chromium through
the ``playwright`` package, runs all cells, and checks that no cell failed, that the gradient-flow
explorer rendered as sliders (not "Loading widget..." or a model-not-found error), and that moving
its depth slider redraws the figure (the image bytes change). Then it answers exercise 02.1 as a
learner does, typing into the exercise cell and running it: a wrong answer gets the check's verdict
and its hint in the cell's output, the right one "right". Screenshots are saved in the test's
temporary folder.

It needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it), launched
from /usr/bin/chromium: Playwright's own browser download does not work offline.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("needs Chromium at /usr/bin/chromium (Debian: apt-get install chromium); .ci/run installs it",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "02_vanishing_gradients.ipynb"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# JupyterLab settings for the test's own settings folder: every cell in the page (no windowing, so
# each cell's prompt and outputs can be read) and no news or update checks (no network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
}
SECONDS = 1000  # Playwright counts milliseconds

# The open notebook as JupyterLab sees it: kernel status, code cells, how many have run, how many
# are queued or running ([*]), and the error outputs ("ename: evalue").
NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.content || !panel.content.widgets) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
  const prompt = cell => (cell.node.querySelector('.jp-InputPrompt') || {}).textContent || '';
  const outputs = cells.flatMap(cell => cell.model.outputs.toJSON());
  return {
    kernel: kernel ? kernel.status : 'none',
    cells: cells.length,
    executed: cells.filter(cell => cell.model.executionCount !== null).length,
    running: cells.filter(cell => prompt(cell).includes('*')).length,
    errors: outputs.filter(o => o.output_type === 'error')
      .map(o => [o.ename + ': ' + o.evalue, ...(o.traceback || []).slice(-2)].join('\\n')),
  };
}"""
KERNEL_READY = f"() => {{ const s = ({NOTEBOOK_STATE})(); return s && s.cells > 0 && s.kernel === 'idle'; }}"
RUN_FINISHED = (f"() => {{ const s = ({NOTEBOOK_STATE})(); return s && s.kernel === 'idle' && s.running === 0 "
                "&& (s.executed === s.cells || s.errors.length > 0); }")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(url, process, log, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer at {url} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab serving a copy of notebook 02 (so the browser's autosave cannot touch the
    course), with its own settings, workspaces and runtime folders; stopped by its PID."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work)
    settings = tmp_path / "settings"
    for name, text in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(text)
    port = free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", "--IdentityProvider.token=", f"--ServerApp.root_dir={work}",
               "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log = tmp_path / "jupyterlab.log"
    with open(log, "w") as log_file:
        # Its own session (process group), so that its kernel goes with it if SIGTERM is not enough.
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, process, log)
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)  # JupyterLab shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def png_bytes(src):
    assert src and src.startswith("data:image/png;base64,"), (src or "")[:80]
    data = base64.b64decode(src.split(",", 1)[1])
    assert data.startswith(b"\x89PNG"), data[:8]
    return data


def wait_for_new_image(page, figure, old_src, timeout):
    """The src of the one image in ``figure`` once it differs from ``old_src``: the explorer clears its
    output before drawing, so for a moment there may be no image at all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sources = figure.evaluate_all("images => images.map(image => image.getAttribute('src'))")
        if len(sources) == 1 and sources[0] != old_src:
            return sources[0]
        page.wait_for_timeout(250)
    pytest.fail(f"the figure did not change within {timeout} s of moving the depth slider")


def answer_exercise(page, exercise_id, answer):
    """Type ``answer`` into the exercise cell of ``exercise_id`` (in place of what it holds), run the
    cell with Shift+Enter and return the cell's locator."""
    cell = page.locator(".jp-CodeCell").filter(has_text=f'gc.exercises.check("{exercise_id}"')
    sync_api.expect(cell).to_have_count(1)
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    # insert_text types no keys, so the editor adds no closing brackets or indentation of its own
    page.keyboard.insert_text(f'answer = {answer}\ngc.exercises.check("{exercise_id}", answer)')
    page.keyboard.press("Shift+Enter")
    return cell


def test_notebook_02_widgets_work_in_a_browser(jupyterlab, tmp_path):
    expect = sync_api.expect
    expect.set_options(timeout=60 * SECONDS)  # expect's own default is 5 s, too short on a busy 2-core machine
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60 * SECONDS)
        try:
            page.goto(f"{jupyterlab}/lab/tree/{NOTEBOOK.name}")
            page.wait_for_function(KERNEL_READY, timeout=90 * SECONDS, polling=250)
            # Not awaited: the command's promise settles only when every cell has run.
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            page.wait_for_function(RUN_FINISHED, timeout=300 * SECONDS, polling=500)  # ~10 s when idle
            state = page.evaluate(NOTEBOOK_STATE)
            assert state["errors"] == [], state
            assert state["executed"] == state["cells"], state

            explorer = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator(".widget-slider"))
            expect(explorer).to_have_count(1)
            depth = explorer.locator(".widget-slider").filter(has=page.get_by_text("depth", exact=True))
            expect(depth).to_be_visible()
            figure = explorer.locator(".widget-output img")
            expect(figure).to_have_count(1)
            notebook = page.locator(".jp-Notebook")
            for broken in ["Loading widget", "model not found", "Error displaying widget"]:
                expect(notebook.get_by_text(broken)).to_have_count(0)
            before_src = figure.get_attribute("src")
            before = png_bytes(before_src)

            readout = depth.locator(".widget-readout")
            expect(readout).to_have_text("20")
            readout.fill("5")
            readout.press("Enter")
            expect(readout).to_have_text("5")
            after_src = wait_for_new_image(page, figure, before_src, timeout=60)
            after = png_bytes(after_src)
            assert after != before
            explorer.screenshot(path=tmp_path / "explorer_depth_5.png")
            assert page.evaluate(NOTEBOOK_STATE)["errors"] == []

            # a learner answers exercise 02.1: first with sigma instead of sigma', then right
            unanswered = page.locator(".jp-CodeCell").filter(has_text='gc.exercises.check("02.1"')
            expect(unanswered.locator(".jp-OutputArea-output")).to_contain_text("Exercise 02.1: not answered yet")
            cell = answer_exercise(page, "02.1", "0.8 ** 4")
            output = cell.locator(".jp-OutputArea-output")
            expect(output).to_contain_text("Exercise 02.1: wrong")
            expect(output).to_contain_text("its derivative is sigma'(z)")
            cell.screenshot(path=tmp_path / "exercise_wrong.png")
            cell = answer_exercise(page, "02.1", "(0.8 * 0.2) ** 4")
            expect(cell.locator(".jp-OutputArea-output")).to_contain_text("Exercise 02.1: right")
            cell.screenshot(path=tmp_path / "exercise_right.png")
            assert page.evaluate(NOTEBOOK_STATE)["errors"] == []
        finally:
            page.screenshot(path=tmp_path / "jupyterlab.png")
            browser.close()
