"""Build the book as a static HTML site, offline, with jupyter-book 1.

The pages and their order come from `_quarto.yml` (the one definition of the site's navigation, also used by
`nbdev_docs` where Quarto is installed): notebooks, and plain Markdown pages. Notebooks are first processed with
nbdev's processors for Quarto (front matter, show_doc cells, hidden cells, links of backticked names), except the
one that executes cells to render show_doc, then adapted to MyST-NB:

- the front matter becomes the page title; Quarto cell options become cell tags (`echo`, `output`, `include`) and
  image options (`fig-alt`, `fig-cap`);
- every `show_doc` entry becomes a Sphinx Python-domain description (signature, docstring, one line per parameter
  from nbdev's comment-per-parameter docments; classes with their public methods), so the general index and the
  search know every exported name;
- nbdev's links of backticked names, which point at a published Quarto site, become cross-references inside this
  site; a link to any other site is an error;
- saved outputs are made readable: Markdown tables that were `print`ed become tables, warnings lose the file and
  line of the machine that ran them, figures are shown at their physical size (never stretched), widget views,
  which a static page cannot show, are dropped (a chapter shows a picture instead).

An API index page, listing every exported name with its parameters, is generated and appended to the navigation.

    python tools/build_docs.py [--out _docs] [--keep]
"""
from __future__ import annotations
import argparse, ast, base64, importlib, inspect, io, json, re, shutil, subprocess, sys
from configparser import ConfigParser
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[1]
API_PAGE = 'api'
PY_ROLE = re.compile(r'\{py:obj\}`([^`<]*) <([\w.]+)>`')


def quarto_chapters(quarto_yml: Path):
    "[(section caption or None, [page file names])] from `website.sidebar.contents` of `_quarto.yml`."
    cfg = yaml.safe_load(quarto_yml.read_text())
    try: contents = cfg['website']['sidebar']['contents']
    except (KeyError, TypeError): raise SystemExit(f"{quarto_yml.name}: website.sidebar.contents is missing")
    parts, loose = [], []
    for item in contents:
        if isinstance(item, str): loose.append(item)
        elif isinstance(item, dict) and 'section' in item: parts.append((item['section'], list(item.get('contents', []))))
        else: raise SystemExit(f"{quarto_yml.name}: cannot read sidebar entry {item!r}")
    return ([(None, loose)] if loose else []) + parts


def settings():
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini')
    return cfg['DEFAULT']


# ---------------------------------------------------------------------------------------------------------------
# The exported API: names, signatures, docments, rendered as Sphinx Python-domain directives in MyST
# ---------------------------------------------------------------------------------------------------------------

class Api:
    "Every exported name of the library (modules' `__all__`), the notebook that defines it, and the methods of classes."
    def __init__(self, lib: str = 'lcr'):
        sys.path.insert(0, str(ROOT))
        self.lib, self.modules, self.notebook_of = lib, {}, {}
        for f in sorted((ROOT / lib).glob('[!_]*.py')):
            m = re.search(r'File to edit: \.\./nbs/([\w.-]+\.ipynb)', f.read_text()[:2000])
            if not m: continue
            mod = importlib.import_module(f'{lib}.{f.stem}')
            self.modules[mod.__name__] = mod
            self.notebook_of[mod.__name__] = m.group(1)
        self.names = {}                      # full name -> object, for every exported name and every documented method
        for mn, mod in self.modules.items():
            for n in getattr(mod, '__all__', []):
                obj = getattr(mod, n)
                self.names[f'{mn}.{n}'] = obj
                if inspect.isclass(obj):
                    for meth, _ in class_members(obj): self.names[f'{mn}.{n}.{meth}'] = getattr(obj, meth, None)

    def module_of_notebook(self, nb_name: str):
        return next((m for m, nb in self.notebook_of.items() if nb == nb_name), None)

    def resolve(self, text: str, module: str | None = None, context: str | None = None):
        """Full name of the exported object `text` (e.g. `gap`, `SSLMethod.encode`, `lcr.core.gap`) names, or None;
        `context` is the full name of a class whose methods `text` may name."""
        t = text.strip().removesuffix('()')
        if not re.fullmatch(r'[A-Za-z_][\w.]*', t): return None
        if t in self.names: return t
        if context and f'{context}.{t}' in self.names: return f'{context}.{t}'
        if module and f'{module}.{t}' in self.names: return f'{module}.{t}'
        hits = [f for f in self.names if f.endswith('.' + t) and f.count('.') == t.count('.') + 2]
        return hits[0] if len(hits) == 1 else None


def class_members(cls):
    "[(name, kind)] of the public methods and properties a class defines itself (plus `__call__`), in source order."
    out = []
    for n, v in vars(cls).items():
        if n.startswith('_') and n != '__call__': continue
        if isinstance(v, property): out.append((n, 'property'))
        elif isinstance(v, classmethod): out.append((n, 'classmethod'))
        elif isinstance(v, staticmethod): out.append((n, 'staticmethod'))
        elif inspect.isfunction(v): out.append((n, 'method'))
    return out


def _md_escape(s: str) -> str:
    "Escape Markdown emphasis, maths and HTML in plain text, leaving backtick spans alone."
    parts = re.split(r'(`[^`]*`)', s)
    return ''.join(p if p.startswith('`') else re.sub(r'([*_$<\[\]|\\])', r'\\\1', p) for p in parts)


def link_names(s: str, api: Api, module: str | None, context: str | None = None) -> str:
    "Backticked exported names in `s` (escaped Markdown) become cross-references; other spans stay code."
    def sub(m):
        full = api.resolve(m.group(1), module, context)
        return f'{{py:obj}}`{m.group(1)} <{full}>`' if full else m.group(0)
    return re.sub(r'`([^`\n]+)`', sub, s)


def _default(v) -> str:
    r = repr(v)
    if callable(v) and hasattr(v, '__name__'): r = v.__name__
    try: ast.parse(r, mode='eval')
    except SyntaxError: r = '...'
    return r if len(r) <= 60 else '...'


def _anno(a) -> str:
    from fastcore.script import Param
    if a is inspect.Parameter.empty or a is None: return ''
    if isinstance(a, Param): return _anno(a.type)      # a command-line option: its type; its help is the parameter's text
    if isinstance(a, str): return a
    if callable(a) and not isinstance(a, type) and hasattr(a, '__name__'): return a.__name__   # e.g. fastcore's bool_arg
    return getattr(a, '__name__', None) if isinstance(a, type) else str(a).replace('typing.', '')


def parameters(obj, drop_self: bool = False):
    "The `inspect.Parameter`s of a callable (without `self`/`cls` when `drop_self`), or None where Python cannot tell."
    try: params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError): return None
    return params[1:] if drop_self and params and params[0].name in ('self', 'cls') else params


def signature(obj, drop_self: bool = False):
    "(parameter list text, return annotation text) of a callable, or None where Python cannot tell."
    params = parameters(obj, drop_self)
    if params is None: return None
    ps, star = [], False
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star: ps.append('*'); star = True
        s = {p.VAR_POSITIONAL: '*', p.VAR_KEYWORD: '**'}.get(p.kind, '') + p.name
        if p.kind is p.VAR_POSITIONAL: star = True
        if _anno(p.annotation): s += f': {_anno(p.annotation)}'
        if p.default is not p.empty: s += (' = ' if _anno(p.annotation) else '=') + _default(p.default)
        ps.append(s)
        if p.kind is p.POSITIONAL_ONLY and (i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY): ps.append('/')
    return ', '.join(ps), _anno(inspect.signature(obj).return_annotation)


def parameter_docs(obj) -> dict:
    "{parameter: description} from nbdev docments (a comment after each parameter); classes document `__init__`."
    from fastcore.docments import docments
    from fastcore.script import Param
    params = parameters(obj) or []
    helps = {p.name: p.annotation.help for p in params if isinstance(p.annotation, Param) and p.annotation.help}
    try: d = docments(obj, full=True)
    except Exception: return helps
    return {**helps, **{k: v['docment'] for k, v in d.items() if isinstance(v, dict) and v.get('docment')}}


def own_doc(obj) -> str:
    "The docstring `obj` has itself (not one inherited from a base class or from the type of a data object)."
    if not (inspect.isclass(obj) or callable(obj)): return ''
    doc = obj.__dict__.get('__doc__') if inspect.isclass(obj) else getattr(obj, '__doc__', None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ''


def _summary(obj) -> str:
    return own_doc(obj).split('\n\n')[0].replace('\n', ' ').strip()


def _fields(obj, api, module, drop_self=False, context=None) -> list[str]:
    docs, params = parameter_docs(obj), parameters(obj, drop_self) or []
    # parameters without a docment are in the signature already; a bare name in the list would add nothing
    lines = [f':param {p.name}: ' + link_names(_md_escape(docs[p.name]), api, module, context) for p in params if docs.get(p.name)]
    if docs.get('return'): lines.append(':returns: ' + link_names(_md_escape(docs['return']), api, module, context))
    return lines


def _directive(kind: str, sig: str, body: list[str], options: list[str], fence='```') -> str:
    return '\n'.join([f'{fence}{{py:{kind}}} {sig}', *options, '', *body, fence])


def _body(obj, api, module, drop_self=False, context=None) -> list[str]:
    doc = own_doc(obj)
    body = [link_names(_md_escape(doc), api, module, context)] if doc else []
    f = _fields(obj, api, module, drop_self, context)
    return body + ([''] + f if f else [])


def describe(full: str, api: Api, no_index: bool = False) -> str:
    "MyST text of the Python-domain description of the exported object `full` (a class with its methods)."
    obj = api.names[full]
    module, _, name = full.rpartition('.')
    opts = [f':module: {module}'] + ([':no-index:'] if no_index else [])
    if inspect.isclass(obj):
        kind = 'exception' if issubclass(obj, BaseException) else 'class'
        sig = signature(obj)
        head = f"{name}({sig[0]})" if sig else name
        body = _body(obj, api, module, context=full)
        bases = [b for b in obj.__bases__ if b is not object]
        if bases: body = [f"Bases: " + ', '.join(f"`{b.__module__}.{b.__qualname__}`" for b in bases), ''] + body
        body[:] = [link_names(l, api, module) if l.startswith('Bases: ') else l for l in body]
        for meth, mkind in class_members(obj):
            m = vars(obj)[meth]
            f = m.fget if mkind == 'property' else getattr(m, '__func__', m)
            mopts = {'property': [], 'classmethod': [':classmethod:'], 'staticmethod': [':staticmethod:']}.get(mkind, [])
            if mkind == 'property':
                ret = _anno(inspect.signature(f).return_annotation) if signature(f) else ''
                msig = meth
                if ret: mopts = mopts + [f':type: {ret}']
            else:
                s = signature(f, drop_self=mkind != 'staticmethod')
                msig = f"{meth}({s[0]})" + (f" -> {s[1]}" if s and s[1] else '') if s else meth
            mopts += [':no-index:'] if no_index else []
            body += ['', _directive('property' if mkind == 'property' else 'method', msig,
                                    _body(f, api, module, mkind != 'staticmethod', full), mopts, fence='```')]
        return _directive(kind, head, body, opts, fence='````')
    if callable(obj):
        s = signature(obj)
        head = f"{name}({s[0]})" + (f" -> {s[1]}" if s and s[1] else '') if s else name
        return _directive('function', head, _body(obj, api, module), opts)
    return _directive('data', name, [], opts + [f':type: {type(obj).__name__}', f':value: {_short_repr(obj, 100)}'])


def _short_repr(obj, n=60) -> str:
    "`repr(obj)` on one line, at most `n` characters, functions by name (no memory addresses)."
    r = re.sub(r'<(?:function|class|built-in function) ([\w.]+)(?: at 0x[0-9a-f]+)?>', r'\1', repr(obj).split('\n')[0])
    r = re.sub(r' at 0x[0-9a-f]+', '', r)
    return r if len(r) <= n else r[:n - 3] + '...'


def api_index(api: Api, described: set, pages: list) -> str:
    "The API index page: per module, every exported name with its parameters and summary, and class methods."
    out = ['# API index', '',
           'Every name the package exports, module by module, with its parameters. Each name links to its full '
           'description, in the chapter that defines and tests it; names without a chapter entry are described here. '
           'The {ref}`general index <genindex>` lists them alphabetically.', '']
    for mn, mod in api.modules.items():
        nb = api.notebook_of[mn]
        title = _title_of(ROOT / 'nbs' / nb)
        where = f'[{title}]({nb})' if nb in pages else f'`nbs/{nb}` (not in the navigation)'
        out += [f'## `{mn}`', '', f'Defined in {where}. ' + _md_escape((mod.__doc__ or '').strip()), '']
        later = []
        for n in getattr(mod, '__all__', []):
            full, obj = f'{mn}.{n}', getattr(mod, n)
            sig = signature(obj) if callable(obj) else None
            params = f"`({sig[0]})`" if sig else ('' if callable(obj) else f"`= {_short_repr(obj)}`")
            out.append(f"- {{py:obj}}`{n} <{full}>` {params} — {link_names(_md_escape(_summary(obj)), api, mn)}".rstrip(' —'))
            if inspect.isclass(obj):
                for meth, kind in class_members(obj):
                    f = vars(obj)[meth]; f = f.fget if kind == 'property' else getattr(f, '__func__', f)
                    s = signature(f, drop_self=kind != 'staticmethod') if kind != 'property' else None
                    out.append(f"  - {{py:obj}}`{meth} <{full}.{meth}>` " + (f"`({s[0]})`" if s else '') +
                               f" — {link_names(_md_escape(_summary(f)), api, mn, full)}".rstrip(' —'))
            if full not in described: later.append(full)
        out.append('')
        if later:
            out += ['Described here (no chapter entry):', '']
            for full in later: out += [describe(full, api), '']
    return '\n'.join(out) + '\n'


# ---------------------------------------------------------------------------------------------------------------
# Notebooks and pages -> MyST
# ---------------------------------------------------------------------------------------------------------------

def _title_of(path: Path) -> str:
    if path.suffix == '.md':
        m = re.search(r'^# (.+)$', path.read_text(), re.M)
        return m.group(1).strip() if m else path.stem
    for c in json.loads(path.read_text())['cells']:
        m = re.search(r'^# (.+)$', ''.join(c['source']), re.M) if c['cell_type'] == 'markdown' else None
        if m: return m.group(1).strip()
    return path.stem


def _split_directives(src: str):
    lines = src.split('\n'); dirs = {}
    while lines and lines[0].startswith('#|'):
        m = re.match(r'#\|\s*([\w-]+)\s*:?\s*(.*)', lines.pop(0))
        if m: dirs[m.group(1)] = m.group(2).strip().strip('"\'')
    return dirs, '\n'.join(lines)


class Links:
    "Rewrites nbdev's links of backticked names (to `doc_host`) into cross-references inside this site."
    def __init__(self, api: Api, doc_url: str):
        from importlib import import_module
        self.api, self.doc_url, self.url_to_name = api, doc_url.rstrip('/') + '/', {}
        try: syms = import_module(f'{api.lib}._modidx').d['syms']
        except ImportError: syms = {}
        for mod in syms.values():
            for full, (url, _) in mod.items(): self.url_to_name[url] = full
        self.external = []

    def __call__(self, md: str, module: str | None = None) -> str:
        def sub(m):
            text, url = m.group(1), m.group(2)
            if url.startswith(self.doc_url):
                full = self.url_to_name.get(url[len(self.doc_url):])
                full = full if full in self.api.names else self.api.resolve(text.strip('`'), module)
                return f'{{py:obj}}`{text.strip("`")} <{full}>`' if full else text
            if re.match(r'[a-z]+:', url): self.external.append(url); return text
            return m.group(0)
        return re.sub(r'\[(`[^`\]]+`|[^\]]+)\]\(([^)\s]+)\)(\{[^}]*\})?', sub, md)


TABLE_SEP = re.compile(r'^\|(\s*:?-{3,}:?\s*\|)+\s*$')


def split_tables(text: str):
    "[(kind, text)]: a stream's text cut into plain text and the Markdown pipe tables it prints ('table')."
    lines, out, i, buf = text.split('\n'), [], 0, []
    while i < len(lines):
        if lines[i].startswith('|') and i + 1 < len(lines) and TABLE_SEP.match(lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].startswith('|'): j += 1
            if buf: out.append(('text', '\n'.join(buf) + '\n')); buf = []
            out.append(('table', '\n'.join(lines[i:j]) + '\n')); i = j
        else: buf.append(lines[i]); i += 1
    rest = '\n'.join(buf)
    if rest.strip(): out.append(('text', rest))
    return out


def _cells(row: str) -> int:
    "Cells of a pipe-table row as GitHub-flavoured Markdown splits it (an unescaped `|` always separates cells)."
    return len(re.split(r'(?<!\\)\|', row.strip().strip('|'))) if row.strip() not in ('', '|') else 0


def table_problems(md: str) -> list[str]:
    "Rows of the Markdown pipe tables in `md` whose number of cells differs from their header's (a `|` in a cell)."
    out = []
    for kind, t in split_tables(re.sub(r'^```.*?^```', '', md, flags=re.M | re.S)):
        if kind != 'table': continue
        head, _, *rows = t.strip('\n').split('\n')
        out += [f"a table row has {_cells(r)} cells, its header {_cells(head)}: {r[:100]}" for r in rows if _cells(r) != _cells(head)]
    return out


WARNING_HEAD = re.compile(r'^(?:\S.*?):(\d+): (\w*Warning): (.*)$')


def clean_warnings(text: str) -> str:
    """Python warnings as printed (`file:line: Category: message` and the source line) shown as `Category: message`:
    the file, line and source line belong to the machine and the code version that ran the notebook."""
    out, lines, i = [], text.split('\n'), 0
    while i < len(lines):
        m = WARNING_HEAD.match(lines[i])
        if not m: out.append(lines[i]); i += 1; continue
        msg = [f'{m.group(2)}: {m.group(3)}']; i += 1
        while i < len(lines) and lines[i] and not lines[i].startswith('  ') and not WARNING_HEAD.match(lines[i]):
            msg.append(lines[i]); i += 1
        if i < len(lines) and lines[i].startswith('  '): i += 1          # the source line of the warning
        out.append(re.sub(r'\s*\(Triggered internally at [^)]*\)', '', '\n'.join(msg)))
    return '\n'.join(out)


def _png_css_width(b64: str) -> int | None:
    "Width in CSS pixels at which a PNG shows at its physical size (100 px per inch, matplotlib's screen default)."
    from PIL import Image
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        dpi = (im.info.get('dpi') or (None,))[0]
        return round(im.size[0] * 100 / dpi) if dpi else im.size[0]


def _first_sentence(md: str) -> str:
    t = re.sub(r'\{py:obj\}`([^`<]*) <[^>]*>`', r'\1', md)
    t = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', t)
    t = re.sub(r'[`*_#>$\\]', '', t).replace('\n', ' ').strip()
    return re.split(r'(?<=[.:;])\s', t)[0][:200].rstrip(':;')


def _text(x) -> str: return ''.join(x) if isinstance(x, list) else x


def adapt_outputs(cell, cell_tags):
    "Readable saved outputs: printed tables become tables, warnings lose machine paths, figures keep their size."
    outs = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream':
            text = clean_warnings(_text(o['text'])) if o.get('name') == 'stderr' else _text(o['text'])
            for kind, part in split_tables(text):
                if kind == 'table': outs.append({'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': part}})
                else: outs.append({**o, 'text': part})
            continue
        data = o.get('data', {})
        if 'application/vnd.jupyter.widget-view+json' in data:
            continue                                   # a static page cannot show a live widget
        if 'image/png' in data:
            w = _png_css_width(_text(data['image/png']))
            o['metadata'] = {**o.get('metadata', {}), 'image/png': {'width': w}} if w else {}
        outs.append(o)
    cell['outputs'] = outs


def show_doc_name(src: str):
    m = re.fullmatch(r'\s*show_doc\(\s*([\w.]+)\s*(?:,[^)]*)?\)\s*', src)
    return m.group(1) if m else None


def myst_notebook(src: Path, dst: Path, api: Api, links: Links, described: set, original: Path | None = None) -> list[str]:
    "Adapt one nbdev-processed notebook to MyST-NB (see the module docstring); returns the problems a reader would see."
    nb = json.loads(src.read_text())
    problems = []
    module = api.module_of_notebook(src.name)
    cells, last_md = [], ''
    for c in nb['cells']:
        text = _text(c['source'])
        if c['cell_type'] == 'raw' and text.lstrip().startswith('---'):
            fm = yaml.safe_load(text.strip().strip('-')) or {}
            head = f"# {fm.get('title', dst.stem)}\n" + (f"\n> {links(fm['description'], module)}\n" if fm.get('description') else '')
            cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': head}); continue
        if c['cell_type'] == 'markdown':
            if 'AUTOGENERATED! DO NOT EDIT' in text: continue
            problems += table_problems(text)
            c['source'] = last_md = links(text, module)
            cells.append(c); continue
        if c['cell_type'] != 'code': cells.append(c); continue
        dirs, body = _split_directives(text)
        if dirs.get('include') == 'false': continue
        name = show_doc_name(body)
        if name is not None:
            full = api.resolve(name, module)
            if full is None: raise SystemExit(f"{src.name}: show_doc({name}) names no exported object of {api.lib}")
            cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': describe(full, api)})
            described.add(full); continue
        tags = c.setdefault('metadata', {}).setdefault('tags', [])
        if dirs.get('echo') == 'false': tags.append('remove-input')
        if dirs.get('output') == 'false': tags.append('remove-output')
        c['source'] = body
        adapt_outputs(c, tags)
        for o in c['outputs']:
            md = o.get('data', {}).get('text/markdown')
            if md is not None:
                problems += table_problems(_text(md))
                o['data']['text/markdown'] = links(_text(md), module)
        if any('image/png' in o.get('data', {}) for o in c['outputs']):
            alt = dirs.get('fig-alt') or dirs.get('fig-cap') or _first_sentence(last_md) or _title_of(original or src)
            meta = c['metadata'].setdefault('mystnb', {})
            meta['image'] = {'alt': alt}
            if dirs.get('fig-cap'): meta['figure'] = {'caption': dirs['fig-cap']}
        cells.append(c)
    nb['cells'] = cells
    dst.write_text(json.dumps(nb, indent=1))
    return [f"{src.name}: {p}" for p in problems]


def myst_page(src: Path, dst: Path, api: Api, links: Links) -> list[str]:
    "A plain Markdown page: backticked exported names become cross-references; returns the problems a reader would see."
    text = src.read_text()
    parts = re.split(r'(^```.*?^```)', text, flags=re.M | re.S)   # leave code blocks alone
    dst.write_text(''.join(p if p.startswith('```') else link_names(links(p), api, None) for p in parts))
    return [f"{src.name}: {p}" for p in table_problems(text)]


# ---------------------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------------------

def nbdev_process(src: Path, dst: Path):
    """Process a notebook with nbdev's own processors for Quarto (front matter, show_doc cells, hidden cells, links),
    except the one that executes cells to render show_doc: the entries are rendered from the installed package."""
    import os
    from execnb.nbio import read_nb, write_nb
    from nbdev.process import NBProcessor
    from nbdev.processors import FilterDefaults, exec_show_docs
    procs = [p for p in FilterDefaults().base_procs() if p is not exec_show_docs]
    cwd, env = os.getcwd(), os.environ.get('IN_TEST')
    os.chdir(ROOT); os.environ['IN_TEST'] = '1'
    try:
        nb = read_nb(src)
        NBProcessor(nb=nb, procs=procs).process()
        write_nb(nb, dst)
    finally:
        os.chdir(cwd)
        if env is None: del os.environ['IN_TEST']
        else: os.environ['IN_TEST'] = env


def book_config(cfg) -> dict:
    return {
        'title': cfg['title'], 'author': cfg['author'], 'copyright': cfg['copyright'],
        'only_build_toc_files': True,
        'execute': {'execute_notebooks': 'off'},
        'parse': {'myst_enable_extensions': ['dollarmath', 'amsmath', 'colon_fence', 'fieldlist']},
        'html': {'use_repository_button': False, 'use_issues_button': False, 'use_edit_page_button': False,
                 'home_page_in_navbar': True},
        'launch_buttons': {'notebook_interface': 'classic'},
        'sphinx': {'extra_extensions': ['sphinx-mathjax-offline'],
                   'config': {'html_show_sourcelink': False, 'nb_merge_streams': True,
                              # Markdown outputs (tables of results, maths) are full MyST, not CommonMark
                              'nb_render_markdown_format': 'myst',
                              'add_module_names': False, 'python_maximum_signature_line_length': 110,
                              'python_display_short_literal_types': True}},
    }


def build(out: Path, keep: bool = False):
    cfg = settings()
    chapters = quarto_chapters(ROOT / '_quarto.yml')
    names = [n for _, ns in chapters for n in ns]
    missing = [n for n in names if not (ROOT / 'nbs' / n).exists()]
    if missing: raise SystemExit(f"_quarto.yml lists pages that do not exist in nbs/: {missing}")
    odd = [n for n in names if Path(n).suffix not in ('.ipynb', '.md')]
    if odd: raise SystemExit(f"_quarto.yml lists pages that are neither notebooks nor Markdown: {odd}")
    api = Api(cfg['lib_path'])
    links = Links(api, cfg['doc_host'].rstrip('/') + cfg['doc_baseurl'])
    book = ROOT / '_build' / 'book'
    shutil.rmtree(book, ignore_errors=True); book.mkdir(parents=True)
    proc = book / '_nbdev'
    proc.mkdir()
    for n in names:
        if n.endswith('.ipynb'): nbdev_process(ROOT / 'nbs' / n, proc / n)
    described, problems = set(), []
    for n in names:
        if n.endswith('.ipynb'): problems += myst_notebook(proc / n, book / n, api, links, described, ROOT / 'nbs' / n)
        else: problems += myst_page(ROOT / 'nbs' / n, book / n, api, links)
    shutil.rmtree(proc)
    if links.external: raise SystemExit(f"links to other sites in the book: {sorted(set(links.external))}")
    (book / f'{API_PAGE}.md').write_text(api_index(api, described, names))
    problems += [f"{nb} defines {mn} but _quarto.yml does not list it" for mn, nb in api.notebook_of.items() if nb not in names]
    (book / '_static').mkdir()
    shutil.copy(ROOT / 'nbs' / 'styles.css', book / '_static' / 'styles.css')
    root, *_ = names
    toc = {'format': 'jb-book', 'root': Path(root).stem, 'parts': []}
    for caption, ns in chapters:
        ns = [n for n in ns if n != root]
        if not ns: continue
        part = {'chapters': [{'file': Path(n).stem} for n in ns]}
        if caption: part['caption'] = caption
        toc['parts'].append(part)
    toc['parts'].append({'caption': 'Reference', 'chapters': [{'file': API_PAGE}]})
    (book / '_toc.yml').write_text(yaml.safe_dump(toc, sort_keys=False))
    (book / '_config.yml').write_text(yaml.safe_dump(book_config(cfg), sort_keys=False))
    r = subprocess.run([str(Path(sys.executable).parent / 'jupyter-book'), 'build', str(book), '--builder', 'html', '--all'],
                       capture_output=True, text=True)
    log = r.stdout + r.stderr
    if r.returncode != 0 or 'There was an error in building your book' in log:
        raise SystemExit(f"jupyter-book failed:\n{log[-6000:]}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(book / '_build' / 'html', out)
    if not keep: shutil.rmtree(ROOT / '_build', ignore_errors=True)
    warnings = [l.replace(str(book) + '/', '') for l in log.splitlines() if 'WARNING' in l]
    warnings += [f"WARNING: {p}" for p in problems]
    print(f"site written to {out} ({len(names)} pages and the API index, {len(warnings)} warnings)")
    for w in warnings: print('  ', w)
    return out, warnings


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=str(ROOT / '_docs'), help='folder for the HTML site (replaced)')
    p.add_argument('--keep', action='store_true', help='keep the intermediate MyST book in _build/book')
    a = p.parse_args()
    build(Path(a.out).resolve(), a.keep)
