"""The book builds offline into a static site (jupyter-book 1, navigation from `_quarto.yml`), and a real browser reads
every page the way a reader does: tables are tables, equations are typeset (no raw TeX), figures keep their aspect
ratio and are not shrunk below a readable size, nothing needs horizontal scrolling at 1,400 px, every link stays on
this site and lands on an element that exists, no machine path or stale warning location shows, and the API
documentation lists every exported name with its parameters and the methods of classes.

Headless Chromium is a system package (Debian: `chromium`), driven here through the DevTools protocol over a pipe
(no driver, no network). Without it the browser checks are skipped, unless LCR_REQUIRE_BROWSER=1 (as in CI), where
its absence fails the test."""
import base64, functools, html, http.server, inspect, io, itertools, json, os, re, shutil, socketserver, subprocess, sys
import tempfile, threading, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse, unquote
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / 'tools'))
from build_docs import build, quarto_chapters, split_tables, API_PAGE

MACHINE_PATH = re.compile(r'(/home/|/tmp/|/work/|/root/|/Users/|/__w/|/opt/hostedtoolcache|site-packages|[A-Z]:\\\\)')
STALE_WARNING = re.compile(r'\.py:\d+: \w*Warning|Triggered internally at|<ipython-input-')


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp('site') / 'html')


@pytest.fixture(scope='module')
def site(built): return built[0]


def pages():
    "Page names of the navigation (notebooks and Markdown pages), as in `_quarto.yml`."
    return [n for _, ns in quarto_chapters(ROOT / '_quarto.yml') for n in ns]


def html_name(page): return Path(page).stem + '.html'


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(); self.links, self.imgs, self.ids = [], [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        if tag == 'a' and a.get('href'): self.links.append(a['href'])
        if tag == 'img' and a.get('src'): self.imgs.append(a['src'])


def _parse(page: Path) -> _Refs:
    p = _Refs(); p.feed(page.read_text()); return p


def test_build_is_clean_and_every_page_exists(built):
    site, warnings = built
    assert not warnings, "the docs build warned:\n" + '\n'.join(warnings[:20])
    for n in pages() + [API_PAGE + '.md']:
        page = site / html_name(n)
        assert page.exists(), f"missing page for {n}"
        assert len(page.read_text()) > 2000
        assert '{target=' not in page.read_text(), f"Quarto link attributes leak into {page.name}"


def test_links_stay_on_this_site_and_land(site):
    "Every link of every page (navigation included) is relative, its file exists and its #fragment is an id there."
    ids = {p.name: _parse(p).ids for p in site.glob('*.html')}
    external, broken, n = [], [], 0
    for page in site.glob('*.html'):
        p = _parse(page)
        for ref in p.links + p.imgs:
            u = urlparse(ref)
            if u.scheme or u.netloc:
                if u.scheme != 'javascript': external.append(f"{page.name} -> {ref}")
                continue
            n += 1
            target = (page.parent / unquote(u.path)).resolve() if u.path else page
            if not target.exists(): broken.append(f"{page.name} -> {ref}"); continue
            if u.fragment and target.suffix == '.html' and unquote(u.fragment) not in ids.get(target.name, set()):
                broken.append(f"{page.name} -> {ref} (no such anchor)")
    assert not external, f"links to other sites: {external[:20]}"
    assert not broken, f"broken links: {broken[:20]}"
    assert n > 500
    nav = _parse(site / 'index.html')
    targets = {Path(urlparse(l).path).name for l in nav.links}
    assert {html_name(n) for n in pages()} - {'index.html'} <= targets, "the navigation misses pages"
    assert API_PAGE + '.html' in targets


def test_in_text_names_link_inside_the_site(site):
    "nbdev links every backticked exported name; on this site they all land on the name's description."
    names = [l for p in site.glob('[0-9]*.html') for l in _parse(p).links if '#lcr.' in l]
    assert len(names) > 100, len(names)
    assert not any('github.io' in l for p in site.glob('*.html') for l in _parse(p).links)


def test_no_machine_paths_or_stale_warning_locations(site):
    bad = []
    for f in itertools.chain(site.glob('*.html'), (site / '_sources').rglob('*')):
        if not f.is_file() or f.suffix not in ('.html', '.ipynb', '.md'): continue
        text = f.read_text()
        if f.suffix == '.ipynb':    # the downloadable sources: their text, not their embedded images
            nb = json.loads(text)
            text = json.dumps([[c.get('source'), [{k: v for k, v in o.get('data', {}).items() if k != 'image/png'}
                                                   | {'text': o.get('text')} for o in c.get('outputs', [])]] for c in nb['cells']])
        for pat in (MACHINE_PATH, STALE_WARNING):
            for m in pat.finditer(text): bad.append(f"{f.name}: …{text[max(0, m.start() - 60):m.end() + 40]}…")
    assert not bad, '\n'.join(bad[:10])


def _alnum(text): return re.sub(r'[^a-z0-9]', '', html.unescape(text).lower())


def test_api_index_lists_every_exported_name_with_parameters(site):
    from build_docs import Api, class_members, parameters, parameter_docs
    api = Api()
    index = (site / f'{API_PAGE}.html').read_text()
    ids = set().union(*(_parse(p).ids for p in site.glob('*.html')))
    missing, undocumented, n_params = [], [], 0
    for full, obj in api.names.items():
        if not re.search(rf'<li><p><a [^>]*href="[^"]*#{re.escape(full)}"', index): missing.append(f"{full} not in the API index")
        if full not in ids: missing.append(f"{full} has no description on the site")
    for mn, mod in api.modules.items():
        for name in mod.__all__:
            obj, full = getattr(mod, name), f'{mn}.{name}'
            if not callable(obj): continue
            page = next(p for p in site.glob('*.html') if f'id="{full}"' in p.read_text())
            entry = page.read_text().split(f'id="{full}"', 1)[1][:60000]
            item = re.search(rf'<li><p><a [^>]*href="[^"]*#{re.escape(full)}"(.*?)</p>', index, re.S)
            listed = re.sub(r'<[^>]+>', '', item.group(1)) if item else ''
            for p in parameters(obj) or []:
                if p.name in ('self', 'cls'): continue
                n_params += 1
                if not re.search(rf'[(\s*]{p.name}\b', listed): missing.append(f"{full}: parameter {p.name} not in the API index")
            shown = _alnum(re.sub(r'<[^>]+>', '', entry))
            for p, doc in parameter_docs(obj).items():
                if p != 'return' and _alnum(doc)[:30] not in shown:
                    undocumented.append(f"{full}: the description of {p} does not show")
    assert not missing, '\n'.join(missing[:20])
    assert not undocumented, '\n'.join(undocumented[:20])
    assert n_params > 300
    assert any(class_members(o) for o in api.names.values() if inspect.isclass(o))
    assert 'lcr.models.SSLMethod.training_loss' in ids and 'lcr.models.SSLMethod.encode' in ids
    genindex = (site / 'genindex.html').read_text()
    assert genindex.count('<li><a href=') >= len(api.names), "the general index is (almost) empty"
    assert '"lcr.core.info_nce_loss"' not in genindex and 'info_nce_loss()' in genindex


def _md_tables(md: str) -> int:
    md = re.sub(r'^```.*?^```', '', md, flags=re.M | re.S)
    return sum(1 for k, _ in split_tables(md) if k == 'table')


def expected_tables(page: str) -> int:
    "Pipe tables a reader of the source sees: in Markdown cells, Markdown outputs and printed outputs."
    src = ROOT / 'nbs' / page
    if src.suffix == '.md': return _md_tables(src.read_text())
    n = 0
    for c in json.loads(src.read_text())['cells']:
        text = ''.join(c['source'])
        if c['cell_type'] == 'markdown': n += _md_tables(text); continue
        if c['cell_type'] != 'code' or re.search(r'^#\|\s*(hide|include:\s*false)', text, re.M): continue
        for o in c.get('outputs', []):
            s = o.get('text') if o.get('output_type') == 'stream' else o.get('data', {}).get('text/markdown')
            if s: n += _md_tables(''.join(s))
    return n


def test_getting_started_table_is_the_recorded_demo(site):
    "The results table of the getting-started page is the one `make demo` printed, as records/demo.json keeps it."
    from lcr.report import metrics_table
    rec = json.loads((ROOT / 'records' / 'demo.json').read_text())
    rows = lambda t: [l for l in t.splitlines() if re.match(r'\| (mocov2|lcr) \| ', l)]
    recorded = rows(metrics_table(rec['report']))
    assert len(recorded) == 2, recorded
    page = (ROOT / 'nbs' / 'getting_started.md').read_text()
    assert rows(page) == recorded
    assert f"took {rec['seconds'] / 60:.1f} minutes (`records/demo.json`)" in page   # the time the record holds
    assert '<table' in (site / 'getting_started.html').read_text()


def test_pages_a_reader_expects(site):
    lic = (ROOT / 'LICENSE').read_text()
    assert lic.lstrip().startswith('Apache License') and 'Version 2.0, January 2004' in lic
    assert 'license = apache2' in (ROOT / 'settings.ini').read_text()
    assert lic.rstrip('\n') in (ROOT / 'nbs' / 'licence.md').read_text(), "licence.md must quote LICENSE in full"
    cit = (site / 'citation.html').read_text()
    assert 'Learning Common Rationale to Improve Self-Supervised Representation' in cit and 'GANPerf/LCR' in cit
    data = (site / 'your_data.html').read_text()
    for word in ('CUB-200-2011', 'Stanford Cars', 'FGVC-Aircraft', 'iNaturalist 2019', 'ImageFolderSplit', '--weights'):
        assert word in data, word


def test_commands_in_the_pages_exist():
    "Every `make` target, `lcr_*` command and `--option` the Markdown pages show exists."
    from configparser import ConfigParser
    import importlib
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini')
    scripts = dict(s.split('=') for s in cfg['DEFAULT']['console_scripts'].split())
    targets = set(re.findall(r'^([\w-]+):', (ROOT / 'Makefile').read_text(), re.M))
    n = 0
    for page in ROOT.glob('nbs/*.md'):
        for t in re.findall(r'`make ([\w-]+)`|^make ([\w-]+)$', page.read_text(), re.M):
            assert (t[0] or t[1]) in targets, f"{page.name}: the Makefile has no target {t[0] or t[1]}"
        for block in re.findall(r'```sh\n(.*?)```', page.read_text(), re.S):
            for line in block.strip().splitlines():
                cmd, *args = line.split()
                if cmd in ('make', 'pip', 'python', 'python3'): continue
                assert cmd in scripts, f"{page.name}: unknown command {cmd}"
                mod, fn = scripts[cmd].split(':')
                params = inspect.signature(getattr(importlib.import_module(mod), fn)).parameters
                for a in args:
                    if a.startswith('--'):
                        assert a[2:] in params, f"{page.name}: {cmd} has no option {a}"; n += 1
    assert n >= 10


# ---------------------------------------------------------------------------------------------------------------
# The browser: headless Chromium over the DevTools protocol (pipe transport)
# ---------------------------------------------------------------------------------------------------------------

def _chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe is None:
        if os.environ.get('LCR_REQUIRE_BROWSER') == '1': pytest.fail('LCR_REQUIRE_BROWSER=1 but no chromium on PATH')
        pytest.skip('headless Chromium not installed (Debian package `chromium`)')
    return exe


class Browser:
    "A headless Chromium driven through the DevTools protocol on file descriptors 3 and 4 (--remote-debugging-pipe)."
    def __init__(self, exe, width=1400, height=900):
        self.prof = tempfile.mkdtemp()
        to_b, self._w = os.pipe()
        self._r, from_b = os.pipe()
        def child():
            a, b = os.dup(to_b), os.dup(from_b)
            os.dup2(a, 3); os.dup2(b, 4)
        self.proc = subprocess.Popen(
            [exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars',
             '--disable-extensions', f'--user-data-dir={self.prof}', f'--window-size={width},{height}',
             '--remote-debugging-pipe', 'about:blank'],
            pass_fds=(3, 4), preexec_fn=child, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_b); os.close(from_b)
        self.ids, self.buf = itertools.count(1), b''

    def send(self, method, session=None, timeout=60, **params):
        i = next(self.ids)
        msg = {'id': i, 'method': method, 'params': params} | ({'sessionId': session} if session else {})
        os.write(self._w, json.dumps(msg).encode() + b'\0')
        end = time.time() + timeout
        while True:
            while b'\0' not in self.buf:
                if time.time() > end: raise TimeoutError(method)
                chunk = os.read(self._r, 1 << 20)
                if not chunk: raise RuntimeError('Chromium closed the DevTools pipe')
                self.buf += chunk
            raw, self.buf = self.buf.split(b'\0', 1)
            reply = json.loads(raw)
            if reply.get('id') == i:
                if 'error' in reply: raise RuntimeError(f"{method}: {reply['error']}")
                return reply['result']

    def open(self, url):
        "A new tab at `url`, once its load event, web fonts and MathJax's first typesetting are done; its session id."
        target = self.send('Target.createTarget', url='about:blank')['targetId']
        s = self.send('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
        self.send('Page.navigate', session=s, url=url)
        self.eval(s, """new Promise(r => document.readyState === 'complete' ? r(1) : addEventListener('load', () => r(1)))
                        .then(() => document.fonts.ready)
                        .then(() => window.MathJax && MathJax.startup ? MathJax.startup.promise : 0)
                        .then(() => Promise.all([...document.images].map(i => i.decode().catch(() => 0))))""")
        return s, target

    def eval(self, s, expr):
        res = self.send('Runtime.evaluate', session=s, expression=expr, awaitPromise=True, returnByValue=True)
        if 'exceptionDetails' in res: raise RuntimeError(res['exceptionDetails'])
        return res['result'].get('value')

    def screenshot(self, s) -> bytes:
        return base64.b64decode(self.send('Page.captureScreenshot', session=s, format='png')['data'])

    def close(self):
        try: self.send('Browser.close', timeout=10)
        except Exception: self.proc.kill()
        self.proc.wait(20); os.close(self._w); os.close(self._r)
        shutil.rmtree(self.prof, ignore_errors=True)


@pytest.fixture(scope='module')
def served(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(site))
    with socketserver.ThreadingTCPServer(('127.0.0.1', 0), handler) as srv:
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{srv.server_address[1]}"
        srv.shutdown()


@pytest.fixture(scope='module')
def browser(served):
    b = Browser(_chromium())
    yield b
    b.close()


# What a reader sees, measured in the page: text outside code and typeset maths, tables, images, overflowing blocks.
READ_PAGE = r"""(() => {
  const main = document.querySelector('main') || document.body;
  const skip = 'pre, code, script, style, mjx-container, .MathJax, textarea, .highlight';
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || !el.getClientRects().length) continue;
    texts.push(n.nodeValue);
  }
  const wide = [...main.querySelectorAll('pre, table, div.cell_output, div.cell_input, div.highlight, dl.py > dt, p')]
    .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
    .map(e => e.tagName + ': ' + e.innerText.slice(0, 80));
  const imgs = [...main.querySelectorAll('img')].map(i => ({src: i.getAttribute('src'), alt: i.alt,
    nw: i.naturalWidth, nh: i.naturalHeight, w: i.getBoundingClientRect().width, h: i.getBoundingClientRect().height}));
  const tall = [...main.querySelectorAll('div.cell_output div.output pre')].filter(p => p.clientHeight > 700).length;
  return {text: texts.join(' '), tables: main.querySelectorAll('table').length, wide, imgs, tall,
          mathjax: document.querySelectorAll('mjx-container').length,
          widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
          pageWide: document.documentElement.scrollWidth > window.innerWidth + 1};
})()"""

RAW_TEX = re.compile(r'\$|\\[A-Za-z]{2,}|[_^]\{')        # outside code and typeset maths: a dollar, a TeX command, x_{i}
TABLE_TEXT = re.compile(r'\|\s*:?(-{3,}|[–—])|\| [^|\n]+ \| [^|\n]+ \| ')     # a separator row, or a row of cells


def _png_dpi(site, src):
    from PIL import Image
    with Image.open(site / unquote(src)) as im: return (im.info.get('dpi') or (100,))[0]


def test_pages_read_as_a_reader_reads_them(site, served, browser):
    problems, n_imgs, n_tables = [], 0, 0
    for page in pages() + [API_PAGE + '.md']:
        s, target = browser.open(f"{served}/{html_name(page)}")
        r = browser.eval(s, READ_PAGE)
        browser.send('Target.closeTarget', targetId=target)
        name = html_name(page)
        want = expected_tables(page) if page != API_PAGE + '.md' else 0
        n_tables += r['tables']
        if r['tables'] < want: problems.append(f"{name}: {r['tables']} tables rendered, the source has {want}")
        for m in TABLE_TEXT.finditer(r['text']): problems.append(f"{name}: table text outside a table: {m.group(0)!r}")
        for m in RAW_TEX.finditer(r['text']):
            problems.append(f"{name}: raw TeX: …{r['text'][max(0, m.start() - 40):m.end() + 40]}…")
        if r['wide']: problems.append(f"{name}: {len(r['wide'])} blocks need horizontal scrolling, e.g. {r['wide'][:3]}")
        if r['pageWide']: problems.append(f"{name}: the page is wider than the window")
        if r['tall']: problems.append(f"{name}: {r['tall']} printed outputs fill more than 700 px")
        if r['widgets']: problems.append(f"{name}: {r['widgets']} widget views, which a static page shows as nothing")
        for i in r['imgs']:
            n_imgs += 1
            if not i['nw'] or not i['w']: problems.append(f"{name}: image {i['src']} does not show"); continue
            ratio = (i['h'] / i['w']) / (i['nh'] / i['nw'])
            if abs(ratio - 1) > 0.01: problems.append(f"{name}: image {i['src']} is distorted ({ratio:.3f} x its height)")
            px_per_pt = i['w'] / (i['nw'] / _png_dpi(site, i['src']) * 72)
            if px_per_pt < 1.0: problems.append(f"{name}: image {i['src']} is shrunk to {px_per_pt:.2f} px per point")
            if len(i['alt']) < 10 or re.search(r'[0-9a-f]{16}|\.png$|^_images/', i['alt']):
                problems.append(f"{name}: image {i['src']} has no descriptive alt text ({i['alt']!r})")
    assert not problems, '\n'.join(problems[:400])
    assert n_imgs >= 5 and n_tables >= 10


def test_maths_typeset_and_screenshot_not_blank(served, browser):
    from PIL import Image, ImageStat
    s, target = browser.open(f"{served}/00_core.html")
    assert browser.eval(s, "document.querySelectorAll('mjx-container').length") > 20, "MathJax did not typeset"
    assert browser.eval(s, "[...document.scripts].every(x => !x.src || x.src.startsWith(location.origin))")
    with Image.open(io.BytesIO(browser.screenshot(s))) as im:
        g = im.convert('L')
        assert ImageStat.Stat(g).stddev[0] > 10, 'screenshot is blank'
        assert sum(1 for c in g.histogram() if c) > 20, 'screenshot has almost no detail'
    browser.send('Target.closeTarget', targetId=target)


def test_search_finds_api_names(served, browser):
    s, target = browser.open(f"{served}/search.html?q=info_nce_loss")
    hrefs = browser.eval(s, """new Promise(r => { const t0 = Date.now(); (function poll() {
        const a = [...document.querySelectorAll('#search-results a')].map(a => a.getAttribute('href'));
        if (document.querySelector('#search-results p.search-summary') || Date.now() - t0 > 20000) r(a); else setTimeout(poll, 100);
    })(); })""")
    browser.send('Target.closeTarget', targetId=target)
    assert any(h.endswith('00_core.html#lcr.core.info_nce_loss') for h in hrefs), hrefs
