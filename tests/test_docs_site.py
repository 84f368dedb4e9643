"""The documentation site: built with `python docs/build.py` and checked in a real browser.

The site is built once per test session, into _docs/ exactly as the documented command does it (run these tests in
one process, as .ci/run does, not spread over pytest-xdist workers: two builds into _docs/ at once collide),
which executes every notebook as nbdev-test does (about a minute and a half on two cores). A failing build fails the tests.
The browser checks drive Debian's headless Chromium through selenium and chromium-driver
(`apt-get install chromium chromium-driver`; .ci/run installs them); they are skipped, saying so,
only where those two programs are missing. The site is served by http.server under a sub-path
(http://127.0.0.1:PORT/site/), so a link that only works from the server's root fails.
Full-page screenshots of the checked pages go to build/docs/screenshots/.
"""
import functools, http.server, os, re, shutil, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT/'_docs'                       # nbdev's doc_path, where docs/build.py writes
SHOTS = ROOT/'build'/'docs'/'screenshots'
PREFIX = '/site/'                         # the site is served below the server's root
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--hide-scrollbars', '--window-size=1280,1000']

def _page(nb: Path) -> str:
    "The site page of a notebook, named as nbdev names it (01_prune_vgg_resnet.ipynb -> prune_vgg_resnet.html)."
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb.name.lower()).replace('.ipynb', '.html')

TUTORIALS = [f"tutorials/{_page(nb)}" for nb in sorted((ROOT/'nbs'/'tutorials').glob('*.ipynb'))]


@pytest.fixture(scope='session')
def site():
    "Build the site with the documented command, once per session; a failed build fails the test."
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(ROOT/'docs'/'build.py'), '--jobs', '2'], cwd=ROOT,
                       capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        pytest.fail(f"`python docs/build.py` failed (exit code {r.returncode}):\n{(r.stdout + r.stderr)[-6000:]}", pytrace=False)
    assert (SITE/'index.html').is_file(), r.stdout
    print(f"\ndocs built in {time.perf_counter() - t0:.0f}s")
    return SITE


def test_build_writes_every_page(site):
    "Without a browser: the home page, one page per module notebook, the tutorials, and the images as files."
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')): assert (site/_page(nb)).is_file(), _page(nb)
    assert len(TUTORIALS) >= 4
    for page in ['index.html', *TUTORIALS]: assert (site/page).is_file(), page
    assert len(list((site/'_images').glob('*.png'))) >= 3, "the tutorials' figures are missing"
    pruner = (site/'pruner.html').read_text(encoding='utf-8')
    assert 'Pruner.prune_model' in pruner and 'example_inputs' in pruner
    assert not list(site.rglob('*.ipynb')), "notebook sources should not be published"
    for page in site.rglob('*.html'):   # nbdev's anchors and the headings' own ids never collide
        ids = re.findall(r' id="([^"]+)"', page.read_text())
        assert len(ids) == len(set(ids)), f"{page.name} repeats ids {sorted({i for i in ids if ids.count(i) > 1})}"
    assert 'NoneType' not in pruner and 'torch.nn.modules.module.Module' not in pruner, "unreadable signatures"
    text = re.sub(r'<[^>]+>', '', pruner)
    assert 'from fasterai.sparse.trace import' not in text, "a module's import block is on its API page"


# ---------------------------------------------------------------- the browser
class _Handler(http.server.SimpleHTTPRequestHandler):
    "Serves `directory` below PREFIX only (anything else is 404); quiet."
    def translate_path(self, path):
        if not path.startswith(PREFIX): return os.path.join(self.directory, '_outside_the_site_')
        return super().translate_path('/' + path[len(PREFIX):])
    def log_message(self, *args): pass

class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        "A browser that leaves a page cancels its pending requests: not an error."
        if not isinstance(sys.exc_info()[1], ConnectionError): super().handle_error(request, client_address)

@pytest.fixture(scope='session')
def base_url(site):
    server = _Server(('127.0.0.1', 0), functools.partial(_Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}{PREFIX}"
    server.shutdown(); server.server_close()

@pytest.fixture(scope='session')
def browser():
    "Headless Chromium driven by chromium-driver; skipped only where either is not installed (before building the site)."
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        pytest.skip(f"headless browser checks need {' and '.join(missing)}: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: pip install -e '.[dev]'", pytrace=False)
    profile = tempfile.mkdtemp(prefix='fasterai-chromium-')
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f'--user-data-dir={profile}']: options.add_argument(flag)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit(); shutil.rmtree(profile, ignore_errors=True)

def load(driver, url):
    "Open `url`, wait for it to finish loading, and return the messages the page logged (errors only)."
    driver.get_log('browser')   # drop what earlier pages logged
    driver.get(url)
    for _ in range(100):
        if driver.execute_script("return document.readyState") == 'complete': break
        time.sleep(0.1)
    return [e for e in driver.get_log('browser') if e['level'] == 'SEVERE' and 'favicon.ico' not in e['message']]

def broken_images(driver):
    return driver.execute_script("return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")

def screenshot(driver, name):
    "A screenshot of the whole page, into SHOTS."
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height + 50, 16000))
    try:
        path = SHOTS/f"{name}.png"
        assert driver.save_screenshot(str(path)) and path.stat().st_size > 10_000, path
    finally: driver.set_window_size(1280, 1000)
    return path


def _first_words(doc, n=6): return ' '.join(doc.replace('`', '').split()[:n])

# what pages must show: on the Pruner page, the API entry of prune_model with its signature and docstring
EXPECTED = {'index.html': ['fasterai', 'Try it'],
            'pruner.html': ['Pruner.prune_model', 'def prune_model(', 'model: nn.Module', 'inplace: bool = False',
                            'the model to prune; left as it was unless']}

@pytest.mark.parametrize('page', ['index.html', 'pruner.html', *TUTORIALS])
def test_page_loads(browser, base_url, page):
    "The page loads without errors, shows what it should, every image is a real loaded picture, nothing comes from another host."
    errors = load(browser, base_url + page)
    assert not errors, f"{page} logged errors: {errors}"
    assert browser.current_url == base_url + page and '404' not in browser.title
    text = browser.find_element('tag name', 'article').text
    h1 = browser.find_element('css selector', 'article h1').text.strip('#¶ ')
    assert h1 and len(text) > 500, f"{page} looks empty"
    for snippet in EXPECTED.get(page, []): assert snippet in text, f"{snippet!r} is not on {page}"
    if page == 'pruner.html':
        from fasterai.sparse.pruner import Pruner
        assert _first_words(Pruner.prune_model.__doc__) in text, "prune_model's docstring is not on its page"
    assert not broken_images(browser), f"images that did not load on {page}: {broken_images(browser)}"
    if page.startswith('tutorials/prune'): assert len(browser.find_elements('tag name', 'img')) >= 3, "the tutorial's figures"
    hosts = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert all(urlsplit(u).netloc == urlsplit(base_url).netloc for u in hosts), f"{page} loads from other hosts: {hosts}"
    if page in ('index.html', 'pruner.html') or page.startswith('tutorials/prune'):
        screenshot(browser, page.replace('/', '_').removesuffix('.html'))

def test_hidden_and_exported_cells(browser, base_url):
    "`#| hide` cells are not on the page; the source of exported functions is."
    load(browser, base_url + 'sparsifier.html')
    text = browser.find_element('tag name', 'article').text
    assert 'from nbdev.showdoc import show_doc' not in text and '#| export' not in text and '#| hide' not in text
    assert 'def zero_channels(model: nn.Module, # the model to change, in place' in text   # the exported source
    assert 'Zero each channel class in `channels` in every layer' in text or 'Zero each channel class in channels in every layer' in text

def test_internal_links_resolve(browser, base_url):
    "Every link to a page of the site, from every page of the site, reaches a file that exists (HTTP 200), and its anchor is on it."
    pages = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob('*.html'))
    links, ids = {}, {}
    for page in pages:
        load(browser, base_url + page)
        ids[base_url + page] = set(browser.execute_script(
            "return Array.from(document.querySelectorAll('[id], a[name]'), e => e.id || e.name)"))
        for href in browser.execute_script("return Array.from(document.querySelectorAll('a[href]'), a => a.href)"):
            if urlsplit(href).scheme in ('http', 'https') and urlsplit(href).netloc == urlsplit(base_url).netloc:
                links.setdefault(href, page)
    assert len(links) > 50, f"only {len(links)} internal links found"
    bad = []
    for href, page in links.items():
        url, frag = urldefrag(href)
        try: status = urllib.request.urlopen(url, timeout=30).status
        except urllib.error.HTTPError as e: status = e.code
        if status != 200: bad.append(f"{page}: {href} -> HTTP {status}")
        elif frag and url in ids and frag not in ids[url]: bad.append(f"{page}: {href} -> no #{frag} on that page")
    assert not bad, "broken links:\n" + "\n".join(bad)
