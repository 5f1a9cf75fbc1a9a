"""Every notebook reads top to bottom: no cell uses a name that only a later cell of the same notebook defines.

A static check with `ast`, run on every notebook of the book. A cell *uses* a name when one of its statements reads it
while the cell runs: at the top level, in a class body, a decorator, a default value, a comprehension or a lambda
(lambdas in a cell are called by the cell, `test_fail(lambda: ...)`); the bodies of functions run later, when
called, and are not counted. A cell *defines* the names it binds at its top level: assignments, imports, function
and class definitions, loop and `with` targets. A name read by a cell and defined only by a later cell (not by an
earlier one, nor earlier in the same cell) is an error: Jupyter, run top to bottom, raises NameError there.

The chapters read front to back too: no numbered notebook imports (`from lcr.X import ...`, `from lcr import X`,
`import lcr.X`, anywhere in a cell, function bodies included) a module that a later notebook exports
(`#| default_exp X`); the reading order is the order of the file names. The front page, `index.ipynb`, may import
anything."""
import ast, json, re
from pathlib import Path
import pytest
from conftest import notebooks, NBS


def _code_cells(nb_path):
    nb = json.loads(nb_path.read_text())
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        lines = [l for l in src.split('\n') if not l.lstrip().startswith(('%', '!'))]   # IPython magics and shell lines
        yield i, ast.parse('\n'.join(lines))


class _Uses(ast.NodeVisitor):
    "Names read when a cell runs, with the line of their first read (function bodies excluded)."
    def __init__(self): self.names = {}
    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load): self.names.setdefault(node.id, node.lineno)
    def _function(self, node):       # decorators, defaults and annotations run now; the body runs when called
        for d in node.decorator_list: self.visit(d)
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]: self.visit(d)
    visit_FunctionDef = visit_AsyncFunctionDef = _function


def _binds(tree):
    "Names a cell binds at its top level (including inside if/for/with/try blocks at the top level)."
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split('.')[0] for a in node.names if a.name != '*'}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store): out.add(node.id)
    return out


def order_errors(nb_path) -> list:
    "(cell index, name, index of the later cell that defines it) for every forward reference of a notebook."
    cells = list(_code_cells(nb_path))
    defined_at = {}
    for i, tree in cells:
        for n in _binds(tree): defined_at.setdefault(n, []).append(i)
    errors = []
    for i, tree in cells:
        u = _Uses(); u.visit(tree)
        for name in u.names:
            where = defined_at.get(name, [])
            if where and min(where) > i: errors.append((i, name, min(where)))
    return errors


def test_order_check_finds_a_forward_reference(tmp_path):
    cells = ["x = f(1)\n", "def f(a): return g(a)\n", "def g(a): return a\n", "y = [h for h in range(3)]\n"]
    nb = dict(cells=[dict(cell_type='code', source=s, metadata={}, outputs=[]) for s in cells], metadata={})
    p = tmp_path / 'nb.ipynb'; p.write_text(json.dumps(nb))
    assert order_errors(p) == [(0, 'f', 1)]          # g is read inside a function body: not until it is called


@pytest.mark.parametrize('nb', notebooks(), ids=lambda p: p.name)
def test_no_forward_references(nb):
    errs = order_errors(nb)
    assert not errs, f"{nb.name}: " + '; '.join(f"cell {i} uses `{n}`, first defined in cell {j}" for i, n, j in errs)


def _default_exp(nb_path):
    "The module a notebook exports to (its `#| default_exp` line), or None."
    for c in json.loads(nb_path.read_text())['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', src, re.M) if c['cell_type'] == 'code' else None
        if m: return m.group(1)
    return None


def _lcr_imports(tree):
    "Dotted names under `lcr` that a cell imports: `from lcr.X import ...`, `import lcr.X` -> 'X'; `from lcr import X` -> 'X'."
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split('.', 1)[1] for a in node.names if a.name.startswith('lcr.'))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith('lcr.'): yield node.module.split('.', 1)[1]
            elif node.module == 'lcr': yield from (a.name for a in node.names)


def import_order_errors(folder) -> list:
    "(notebook, cell index, module, later notebook that exports it) for every import of a later chapter's module."
    chapters = sorted(p for p in Path(folder).glob('*.ipynb') if p.name[0].isdigit())   # index.ipynb is no chapter
    exported = {m: (k, p.name) for k, p in enumerate(chapters) if (m := _default_exp(p))}
    errors = []
    for k, p in enumerate(chapters):
        for i, tree in _code_cells(p):
            for name in dict.fromkeys(_lcr_imports(tree)):
                parts = name.split('.')
                hits = [exported['.'.join(parts[:n])] for n in range(len(parts), 0, -1) if '.'.join(parts[:n]) in exported]
                if hits and hits[0][0] > k: errors.append((p.name, i, f"lcr.{name}", hits[0][1]))
    return errors


def test_import_check_finds_a_later_chapter(tmp_path):
    def nb(name, *cells):
        d = dict(cells=[dict(cell_type='code', source=s, metadata={}, outputs=[]) for s in cells], metadata={})
        (tmp_path / name).write_text(json.dumps(d))
    nb('00_core.ipynb', "#| default_exp core\nimport json", "import lcr.train as t\nfrom lcr.core import f")
    nb('01_models.ipynb', "#| default_exp models", "%time x = 1\nfrom lcr.core import f\nfrom lcr import train, __version__")
    nb('02_train.ipynb', "#| default_exp train", "from lcr.models import M\ndef g():\n    from lcr.viz import show\n    return show")
    nb('02a_viz.ipynb', "#| default_exp viz", "from lcr.train import train")    # 02_train reads before 02a_viz
    nb('index.ipynb', "from lcr.viz import show")                              # the front page may import anything
    assert import_order_errors(tmp_path) == [('00_core.ipynb', 1, 'lcr.train', '02_train.ipynb'),
                                             ('01_models.ipynb', 1, 'lcr.train', '02_train.ipynb'),
                                             ('02_train.ipynb', 1, 'lcr.viz', '02a_viz.ipynb')]


def test_no_chapter_imports_a_later_chapter():
    errs = import_order_errors(NBS)
    assert not errs, '; '.join(f"{n} cell {i} imports `{m}`, which the later {later} exports" for n, i, m, later in errs)
