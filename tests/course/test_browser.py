"""The course in a real browser: notebooks 02, 12 and 13 run in JupyterLab by headless Chromium.

nbval proves the notebooks' Python; only a browser proves what a learner sees. This module starts
one JupyterLab on 127.0.0.1 at a free port (for all its tests) and one headless Chromium through
the ``playwright`` package, and opens copies of the notebooks, each in its own JupyterLab workspace:

* notebook 02: the Colab setup cell is shown collapsed (its first line as the placeholder of its
  hidden source, no code); after Run All no cell failed, a figure is rendered (an image at least
  300 px wide, visible), the gradient-flow explorer rendered as sliders (not "Loading widget..." or
  a model-not-found error), and moving its depth slider redraws the figure (the image bytes
  change). Then it answers exercise 02.1 as a learner does, typing into the exercise cell and
  running it: a wrong answer gets the check's verdict and its hint in the cell's output, the right
  one "right";
* notebooks 12 and 13: Run All, no cell failed, and a figure is rendered.

Figures are looked for as any ``img`` in a cell's output area outside the explorers' widgets, so
that a figure shown as a PNG output or as HTML with an ``<img>`` both count. Screenshots (the
collapsed setup cell, each checked figure, the explorer, the exercise, the whole page) are saved in
each test's temporary folder. Each notebook's kernel is shut down when its test ends.

It needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it), launched
from /usr/bin/chromium: Playwright's own browser download does not work offline.
"""

from __future__ import annotations

import base64
import contextlib
import json
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

from helpers import CHROMIUM, headless_chromium, load_script

if not CHROMIUM.exists():
    pytest.skip("needs Chromium at /usr/bin/chromium (Debian: apt-get install chromium); .ci/run installs it",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK = NOTEBOOKS / "02_vanishing_gradients.ipynb"
RUN_IN_THE_BROWSER = [NOTEBOOK, NOTEBOOKS / "12_capstone_diagnose_and_fix.ipynb", NOTEBOOKS / "13_transformers.ipynb"]
colab_setup = load_script("tools/colab_setup.py")
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
# Every image in a cell's output area: whether it sits in an explorer's widget, its size as loaded
# and as shown, and its alt text.
OUTPUT_IMAGES = """images => images.map(image => ({
  inWidget: image.closest('.jupyter-widgets, .widget-output') !== null,
  loaded: image.complete, naturalWidth: image.naturalWidth, naturalHeight: image.naturalHeight,
  shownWidth: image.getBoundingClientRect().width, alt: image.getAttribute('alt'),
}))"""
SHUT_DOWN_KERNEL = """async () => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (panel && panel.sessionContext) await panel.sessionContext.shutdown();
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


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """One JupyterLab for the module's tests, serving copies of the notebooks (so the browser's
    autosave cannot touch the course), with its own settings, workspaces and runtime folders;
    stopped by its PID."""
    tmp_path = tmp_path_factory.mktemp("jupyterlab")
    work = tmp_path / "work"
    work.mkdir()
    for notebook in RUN_IN_THE_BROWSER:
        shutil.copy(notebook, work)
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
        # Its own session (process group), so that its kernels go with it if SIGTERM is not enough.
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


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the module's tests; each test opens its own page."""
    sync_api.expect.set_options(timeout=60 * SECONDS)  # expect's default, 5 s, is too short on a busy 2-core machine
    with headless_chromium(sync_api) as browser:
        yield browser


@contextlib.contextmanager
def notebook_page(chromium, jupyterlab, notebook, tmp_path):
    """A page with ``notebook`` open in a workspace of its own and its kernel ready; on leaving, a
    screenshot of the page, then the kernel is shut down and the page closed."""
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60 * SECONDS)
    try:
        page.goto(f"{jupyterlab}/lab/workspaces/{notebook.stem}/tree/{notebook.name}")
        page.wait_for_function(KERNEL_READY, timeout=90 * SECONDS, polling=250)
        yield page
    finally:
        with contextlib.suppress(sync_api.Error):
            page.screenshot(path=tmp_path / "jupyterlab.png")
        with contextlib.suppress(sync_api.Error):
            page.evaluate(SHUT_DOWN_KERNEL)
        page.close()


def run_all(page):
    """Run every cell, as the Run All command does, and wait until all have run without an error."""
    # Not awaited: the command's promise settles only when every cell has run.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function(RUN_FINISHED, timeout=300 * SECONDS, polling=500)  # 02: ~10 s when idle
    state = page.evaluate(NOTEBOOK_STATE)
    assert state["errors"] == [], state
    assert state["executed"] == state["cells"], state


def check_a_figure(page, screenshot):
    """The first figure in the notebook's outputs (outside the explorers) is loaded, at least 300 px
    wide as an image and visible; it is saved as ``screenshot``. Returns every output image's facts
    (see OUTPUT_IMAGES), also saved as images.json beside the screenshot."""
    images = page.locator(".jp-OutputArea-output img")
    sync_api.expect(images.first).to_be_attached()
    found = images.evaluate_all(OUTPUT_IMAGES)
    index = next((i for i, image in enumerate(found) if not image["inWidget"]), None)
    assert index is not None, f"no figure outside the explorers: {found}"
    figure = images.nth(index)
    figure.scroll_into_view_if_needed()
    sync_api.expect(figure).to_be_visible()
    page.wait_for_function("image => image.complete && image.naturalWidth > 0", arg=figure.element_handle())
    facts = images.evaluate_all(OUTPUT_IMAGES)[index]
    assert facts["naturalWidth"] >= 300 and facts["naturalHeight"] >= 150, facts
    assert (facts["alt"] or "").startswith("Figure") and len(facts["alt"]) > 40, \
        f"a figure needs alt text that describes it (gradcourse.display.plots.alt_text): {facts}"
    figure.screenshot(path=screenshot)
    found = images.evaluate_all(OUTPUT_IMAGES)
    screenshot.with_name("images.json").write_text(json.dumps(found, indent=1))
    return found


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


def check_the_setup_cell_is_collapsed(page, screenshot):
    """The first code cell, the Colab setup cell, shows its first line (the Colab form's title) as
    the placeholder of its hidden source, and none of its code."""
    setup = page.locator(".jp-Notebook .jp-CodeCell").first
    placeholder = setup.locator(".jp-InputPlaceholder")
    sync_api.expect(placeholder).to_be_visible()
    sync_api.expect(placeholder).to_have_text(colab_setup.MARKER)
    sync_api.expect(setup.locator(".jp-InputArea")).to_be_hidden()
    sync_api.expect(setup.get_by_text("import subprocess")).to_be_hidden()
    assert page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
                             .find(cell => cell.model.type === 'code').inputHidden""")
    setup.screenshot(path=screenshot)


def test_notebook_02_widgets_work_in_a_browser(chromium, jupyterlab, tmp_path):
    expect = sync_api.expect
    with notebook_page(chromium, jupyterlab, NOTEBOOK, tmp_path) as page:
        if colab_setup.repository() is not None:       # with a repository, every notebook has the setup cell
            check_the_setup_cell_is_collapsed(page, tmp_path / "setup_cell_collapsed.png")
        run_all(page)
        check_a_figure(page, tmp_path / "figure.png")

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


@pytest.mark.parametrize("notebook", RUN_IN_THE_BROWSER[1:], ids=lambda path: path.stem[:2])
def test_notebook_runs_in_a_browser_and_shows_its_figures(chromium, jupyterlab, tmp_path, notebook):
    """Run All in JupyterLab: every cell runs without an error, and a figure is rendered."""
    with notebook_page(chromium, jupyterlab, notebook, tmp_path) as page:
        run_all(page)
        check_a_figure(page, tmp_path / "figure.png")
