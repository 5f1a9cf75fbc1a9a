"""The book builds offline into a static site (jupyter-book 1, navigation from `_quarto.yml`), and a real browser
renders it: every chapter page exists, internal links and images resolve, equations are typeset by the bundled
MathJax, and a screenshot is not blank.

Headless Chromium is a system package (Debian: `chromium`); without it the browser checks are skipped, unless
LCR_REQUIRE_BROWSER=1 (as in CI), where its absence fails the test."""
import functools, http.server, os, re, shutil, socketserver, subprocess, sys, threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse, unquote
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / 'tools'))
from build_docs import build, quarto_chapters


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    return build(tmp_path_factory.mktemp('site') / 'html')


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(); self.links, self.imgs = [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'a' and a.get('href'): self.links.append(a['href'])
        if tag == 'img' and a.get('src'): self.imgs.append(a['src'])


def _local(ref):
    u = urlparse(ref)
    return None if u.scheme or u.netloc or not u.path else unquote(u.path)


def test_every_chapter_page_exists(site):
    for _, names in quarto_chapters(ROOT / '_quarto.yml'):
        for n in names:
            page = site / (Path(n).stem + '.html')
            assert page.exists(), f"missing page for {n}"
            assert len(page.read_text()) > 2000
            assert '{target=' not in page.read_text(), f"Quarto link attributes leak into {page.name}"


def test_internal_links_and_images_resolve(site):
    broken, n_links, n_imgs = [], 0, 0
    for page in site.glob('*.html'):
        p = _Refs(); p.feed(page.read_text())
        for ref in p.links + p.imgs:
            path = _local(ref)
            if path is None: continue
            n_links += 1
            if not (page.parent / path).resolve().exists(): broken.append(f"{page.name} -> {ref}")
        n_imgs += len(p.imgs)
    assert not broken, f"broken links: {broken[:20]}"
    assert n_imgs >= 1
    nav = _Refs(); nav.feed((site / 'index.html').read_text())
    targets = {Path(_local(l)).name for l in nav.links if _local(l)}
    chapters = {Path(n).stem + '.html' for _, ns in quarto_chapters(ROOT / '_quarto.yml') for n in ns}
    assert chapters - {'index.html'} <= targets, f"navigation misses {chapters - targets}"


def test_figures_are_real_images(site):
    from PIL import Image
    pngs = list((site / '_images').glob('*.png'))
    assert pngs, "no figures in the site"
    for f in pngs:
        with Image.open(f) as im: assert im.size[0] > 100 and im.size[1] > 100


def test_mathjax_is_bundled(site):
    page = (site / '00_core.html').read_text()
    assert 'mathjax/tex-chtml.js' in page and '://cdn' not in page.split('tex-chtml.js')[0][-200:]
    assert (site / '_static' / 'mathjax' / 'tex-chtml.js').exists()


def _chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe is None:
        if os.environ.get('LCR_REQUIRE_BROWSER') == '1': pytest.fail('LCR_REQUIRE_BROWSER=1 but no chromium on PATH')
        pytest.skip('headless Chromium not installed (Debian package `chromium`)')
    return exe


@pytest.fixture(scope='module')
def served(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    with socketserver.TCPServer(('127.0.0.1', 0), handler) as srv:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{srv.server_address[1]}"
        srv.shutdown()


FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--hide-scrollbars']


def test_browser_renders_the_book(served, tmp_path):
    exe = _chromium()
    shot = tmp_path / 'index.png'
    r = subprocess.run([exe, *FLAGS, f'--user-data-dir={tmp_path/"prof"}', f'--screenshot={shot}', '--window-size=1280,900',
                        f'{served}/index.html'], capture_output=True, text=True, timeout=120)
    assert shot.exists(), r.stderr[-2000:]
    from PIL import Image, ImageStat
    with Image.open(shot) as im:
        g = im.convert('L'); stat = ImageStat.Stat(g)
        assert stat.stddev[0] > 10, 'screenshot is blank'
        assert sum(1 for c in g.histogram() if c) > 20, 'screenshot has almost no detail'
    dom = subprocess.run([exe, *FLAGS, f'--user-data-dir={tmp_path/"prof2"}', '--virtual-time-budget=15000', '--dump-dom',
                          f'{served}/00_core.html'], capture_output=True, text=True, timeout=120).stdout
    assert 'info_nce_loss' in dom
    assert '<mjx-container' in dom, 'equations were not typeset by the bundled MathJax'
