"""Every notebook reads top to bottom: no cell uses a name that only a later cell of the same notebook defines.

A static check with `ast`, run on every notebook of the book. A cell *uses* a name when one of its statements reads it
while the cell runs: at the top level, in a class body, a decorator, a default value, a comprehension or a lambda
(lambdas in a cell are called by the cell, `test_fail(lambda: ...)`); the bodies of functions run later, when
called, and are not counted. A cell *defines* the names it binds at its top level: assignments, imports, function
and class definitions, loop and `with` targets. A name read by a cell and defined only by a later cell (not by an
earlier one, nor earlier in the same cell) is an error: Jupyter, run top to bottom, raises NameError there."""
import ast, json
import pytest
from conftest import notebooks


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
