"""The course's website (site/, Jupyter Book 1), built and walked in a real browser.

Once per test session the site is built with the command of ``make site`` (read from the Makefile, with
``-W``: a warning fails the build) into a temporary folder, every notebook executed; the executed
notebooks are cached in _build/.jupyter_cache, shared with ``make site``, so a second build reruns only
the notebooks whose code changed. The build's pages are checked for internal links that lead nowhere
(a file or an anchor that does not exist). Then the site is served on 127.0.0.1 and opened in headless
Chromium (through ``playwright``, as tests/course/test_browser.py does): the home page; every notebook
page, in course order, with a figure that loads, alt text on every figure, opaque figures (readable in
the dark theme too), its Colab, Binder and source links pointing at its notebook in the repository, no
Colab setup cell, each exercise's worked solution in a collapsed block and a note beside each explorer;
next and previous through the whole course; and a search for "GradScaler" and "LSUV".

``GRADCOURSE_SITE=_build/html`` tests a site already built (by ``make site``) instead of building one.
Needs the ``site`` extra (jupyter-book) and Debian's ``chromium`` at /usr/bin/chromium; skipped without
them. The Pages workflow, which cannot run here, is checked for what it runs and publishes. Screenshots of
one page in the light and dark themes are saved in the test's temporary folder.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from helpers import CHROMIUM, headless_chromium

try:
    from playwright import sync_api
except ImportError:
    sync_api = None

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BRANCH = "main"
SITE_ADDRESS = "https://gradcourse.github.io/gradcourse/"
BUILD_TIMEOUT_S = 3600   # every notebook executed once: a few minutes on a fast machine
SECONDS = 1000  # Playwright counts milliseconds
EXERCISE = re.compile(r'gc\.exercises\.check\(\s*"(\d\d\.\d+)"')
WIDGET = re.compile(r"\bgc\.widgets\.\w+\(")

# Every figure of the page's notebook outputs: its alt text, whether it loaded, and whether its corner
# pixel is opaque (a transparent figure turns dark-on-dark in the dark theme).
FIGURES = """() => Array.from(document.querySelectorAll('article .cell_output img')).map(img => {
  let opaque = null;
  if (img.complete && img.naturalWidth > 0) {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    opaque = context.getImageData(1, 1, 1, 1).data[3] === 255;
  }
  return {alt: img.getAttribute('alt') || '', width: img.naturalWidth, opaque: opaque, saved: false,
          src: (img.getAttribute('src') || '').slice(0, 60)};
})"""
# The explorers' figures as the notebook left them, in the page's saved widget state (the widgets'
# JavaScript, from a CDN, draws them on the published site): each decoded as an image, with the alt
# text of the <img> that its text/html shows.
SAVED_FIGURES = """async () => {
  const script = document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
  if (!script) return [];
  const outputs = Object.values(JSON.parse(script.textContent).state)
    .filter(model => model.model_name === 'OutputModel')
    .flatMap(model => model.state.outputs || []).filter(output => output.data && output.data['image/png']);
  return Promise.all(outputs.map(output => new Promise(resolve => {
    const img = new Image();
    const alt = (new DOMParser().parseFromString(output.data['text/html'] || '', 'text/html')
                 .querySelector('img[alt]') || {getAttribute: () => ''}).getAttribute('alt');
    const done = () => resolve({alt: alt || '', width: img.naturalWidth, opaque: null, saved: true,
                                src: 'widget state'});
    img.onload = done; img.onerror = done;
    img.src = 'data:image/png;base64,' + output.data['image/png'];
  })));
}"""
ALL_IMAGES_SETTLED = "() => Array.from(document.querySelectorAll('article img')).every(img => img.complete)"


def repository():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def make_site_command():
    """The recipe of the Makefile's ``site`` target, with ``$(BIN)`` this Python's bin folder."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    recipe = lines[lines.index(next(line for line in lines if line.startswith("site:"))) + 1]
    return shlex.split(recipe.strip().replace("$(BIN)", str(Path(sys.executable).parent)))


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The folder of the built site's HTML: built now with ``make site``'s command (or GRADCOURSE_SITE)."""
    if os.environ.get("GRADCOURSE_SITE"):
        return Path(os.environ["GRADCOURSE_SITE"]).resolve()
    pytest.importorskip("jupyter_book", reason="needs jupyter-book: pip install -e '.[site]'")
    output = tmp_path_factory.mktemp("site")
    command = make_site_command() + ["--path-output", str(output)]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as timeout:
        said = timeout.stdout.decode(errors="replace") if isinstance(timeout.stdout, bytes) else timeout.stdout
        pytest.fail(f"make site did not finish within {BUILD_TIMEOUT_S} s:\n{(said or '')[-3000:]}")
    said = done.stdout + done.stderr
    assert done.returncode == 0, f"make site failed ({shlex.join(command)}):\n{said[-6000:]}"
    print(f"site built in {time.monotonic() - start:.0f} s")
    return output / "_build" / "html"


class _Links(html.parser.HTMLParser):
    """The ids of a page and the URLs its elements point to (href and src)."""

    def __init__(self):
        super().__init__()
        self.ids, self.urls = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") == "canonical"):
                self.urls.append(attrs[key])


def _parse(page):
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def test_the_site_has_no_internal_link_that_leads_nowhere(built_site):
    pages = {page: _parse(page) for page in built_site.rglob("*.html")
             if not {"_sources", "_static"} & set(page.relative_to(built_site).parts)}   # the theme's templates
    broken = []
    for page, links in pages.items():
        for url in links.urls:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//") or not (parts.path or parts.fragment):
                continue   # another site, or data: URIs
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(built_site)}: {url} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if parts.fragment not in ids:
                    broken.append(f"{page.relative_to(built_site)}: {url} (no such anchor)")
    assert broken == [], "\n".join(broken[:40])


@pytest.fixture(scope="session")
def site_url(built_site):
    """The built site, served on 127.0.0.1 at a free port, from a thread."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=built_site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("needs Chromium at /usr/bin/chromium (Debian: apt-get install chromium); .ci/run installs it")
    if sync_api is None:
        pytest.skip("needs playwright: pip install -e '.[browser]'")
    with headless_chromium(sync_api) as chromium:
        yield chromium


@pytest.fixture
def page(browser):
    sync_api.expect.set_options(timeout=60 * SECONDS)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60 * SECONDS)
    yield page
    page.close()


def notebook_page(site_url, notebook):
    return f"{site_url}/notebooks/{notebook.stem}.html"


def test_home_page_says_what_the_course_is_and_maps_it(page, site_url):
    page.goto(f"{site_url}/")   # index.html forwards to the home page, site/index.html
    page.wait_for_url(re.compile(r"/site/index\.html$"))
    article = page.locator("article")
    sync_api.expect(page.locator("article h1")).to_contain_text("Vanishing and exploding gradients")
    for words in ["For whom", "How to read and run it", "The course map", "make lab", SITE_ADDRESS.rstrip("/")]:
        sync_api.expect(article).to_contain_text(words)
    course_map = article.locator("table").first
    for notebook in NOTEBOOKS:
        link = course_map.locator(f'a[href$="notebooks/{notebook.stem}.html"]')
        sync_api.expect(link).to_have_count(1)


def has_alt(figure):
    return bool(figure["alt"].strip()) and not figure["alt"].endswith(".png")   # not Sphinx's default, the file


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[notebook.stem[:2] for notebook in NOTEBOOKS])
def test_every_notebook_page_shows_its_figures_links_and_solutions(page, site_url, notebook):
    source = json.loads(notebook.read_text())
    code = ["".join(cell["source"]) for cell in source["cells"] if cell["cell_type"] == "code"]
    page.goto(notebook_page(site_url, notebook))
    sync_api.expect(page.locator("article h1")).to_contain_text(notebook.stem[:2] + " ·")
    page.wait_for_function(ALL_IMAGES_SETTLED)
    problems = []
    figures = page.evaluate(FIGURES) + page.evaluate(SAVED_FIGURES)
    if not any(figure["width"] > 0 for figure in figures):
        problems.append("no figure loads")
    problems += [f"a figure does not load: {figure}" for figure in figures if figure["width"] == 0]
    problems += [f"a figure has no alt text: {figure}" for figure in figures if not has_alt(figure)]
    problems += [f"a figure is transparent: {figure}" for figure in figures if figure["opaque"] is False]

    path = f"notebooks/{notebook.name}"
    owner_name = urlsplit(repository()).path.strip("/")
    for url in [f"https://colab.research.google.com/github/{owner_name}/blob/{BRANCH}/{path}",
                f"https://mybinder.org/v2/gh/{owner_name}/{BRANCH}?urlpath=lab/tree/{path}",
                f"{repository()}/blob/{BRANCH}/{path}"]:
        if page.locator(f'a[href="{url}"]').count() != 1:
            problems.append(f"no link to {url}")

    article = page.locator("article")
    if article.get_by_text("google.colab").count():
        problems.append("the Colab setup cell is on the page")
    if article.get_by_text("not answered yet").count():
        problems.append("an exercise check's output is on the page")
    for exercise in [match.group(1) for cell in code for match in EXERCISE.finditer(cell)]:
        block = article.locator("details").filter(has_text=f"Worked solution: exercise {exercise}")
        if block.count() != 1 or block.get_attribute("open") is not None:
            problems.append(f"exercise {exercise}: not one collapsed worked solution")
    explorers = sum(len(WIDGET.findall(cell)) for cell in code)
    notes = article.get_by_text("its controls move in Colab, Binder or JupyterLab").count()
    saved = sum(1 for figure in figures if figure["saved"])
    if notes != explorers or saved < explorers:
        problems.append(f"{explorers} explorers, {notes} notes that they move in a running notebook, {saved} saved figures")
    assert problems == [], "\n".join(problems)


def test_next_and_previous_walk_the_whole_course_in_order(page, site_url):
    expected = [f"notebooks/{notebook.stem}.html" for notebook in NOTEBOOKS]
    page.goto(f"{site_url}/site/index.html")
    forwards = []
    while len(forwards) < len(expected):
        page.locator("a.right-next").click()
        forwards.append(urlsplit(page.url).path.lstrip("/"))
    assert forwards == expected
    backwards = [forwards[-1]]
    while len(backwards) < len(expected):
        page.locator("a.left-prev").click()
        backwards.append(urlsplit(page.url).path.lstrip("/"))
    assert backwards == expected[::-1]


@pytest.mark.parametrize("term, notebook", [("GradScaler", "11_mixed_precision"),
                                            ("LSUV", "04_weight_initialization")])
def test_search_finds_a_term_in_its_notebook(page, site_url, term, notebook):
    page.goto(f"{site_url}/search.html?q={term}")
    results = page.locator("#search-results ul.search li a")
    sync_api.expect(results.first).to_be_visible()
    sync_api.expect(page.locator(f'#search-results a[href*="notebooks/{notebook}.html"]').first).to_be_attached()


def test_figures_stay_readable_in_the_dark_theme(browser, site_url, tmp_path):
    notebook = NOTEBOOKS[min(2, len(NOTEBOOKS) - 1)]
    for theme in ["light", "dark"]:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(f"localStorage.setItem('mode', '{theme}'); localStorage.setItem('theme', '{theme}');")
        page.goto(notebook_page(site_url, notebook))
        assert page.evaluate("document.documentElement.dataset.theme") == theme
        figure = page.locator("article .cell_output img").first
        figure.scroll_into_view_if_needed()
        page.wait_for_function(ALL_IMAGES_SETTLED)
        style = figure.evaluate("img => { const s = getComputedStyle(img); return [s.backgroundColor, s.filter]; }")
        if theme == "dark":
            assert style == ["rgb(255, 255, 255)", "none"], style
        page.screenshot(path=tmp_path / f"{notebook.stem}_{theme}.png")
        page.close()


def test_the_pages_workflow_publishes_what_make_site_builds():
    """.github/workflows/pages.yml: on a push to main, ``make site`` (the command tested above) from a
    clean checkout, then _build/html uploaded and deployed to GitHub Pages."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    triggers = workflow[True]      # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == [BRANCH]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build = workflow["jobs"]["build"]["steps"]
    assert [step["run"] for step in build if "run" in step] == ["make site"]
    [upload] = [step for step in build if step.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]
    python = [step for step in build if step.get("uses", "").startswith("actions/setup-python@")]
    assert python and python[0]["with"]["python-version"] == "3.11"


def test_the_site_address_is_in_the_readme_and_the_config():
    config = yaml.safe_load((ROOT / "site" / "_config.yml").read_text())
    assert config["html"]["baseurl"] == SITE_ADDRESS
    assert config["repository"] == {"url": repository(), "path_to_book": "", "branch": BRANCH}
    assert SITE_ADDRESS in (ROOT / "README.md").read_text()
