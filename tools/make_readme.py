"""Write README.md from nbs/index.ipynb (the front page of the book), without Quarto.

Markdown cells are copied, visible code cells become ```python blocks followed by their text output; cells marked
`#| hide` are left out; a cell marked `#| echo: false` shows only its output, and a Markdown output (a table rendered
from a committed record, say) is copied as Markdown. `python tools/make_readme.py --check` exits 1 when README.md is out of date.
"""
from __future__ import annotations
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_text(nb_path: Path = ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = json.loads(nb_path.read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'markdown':
            parts.append(src.strip())
        elif c['cell_type'] == 'code':
            lines = src.split('\n')
            flags = {l.strip().replace(' ', '') for l in lines if l.startswith('#|')}
            if flags & {'#|hide', '#|include:false'}: continue
            code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if not code: continue
            md = ''.join(''.join(o.get('data', {}).get('text/markdown', '')) for o in c.get('outputs', [])
                         if o.get('output_type') in ('execute_result', 'display_data'))
            if md.strip():
                if '#|echo:false' not in flags: parts.append(f"```python\n{code}\n```")
                parts.append(md.strip()); continue
            if '#|echo:false' not in flags: parts.append(f"```python\n{code}\n```")
            out = ''.join(''.join(o.get('text', '')) for o in c.get('outputs', []) if o.get('output_type') == 'stream')
            out += ''.join(''.join(o.get('data', {}).get('text/plain', '')) for o in c.get('outputs', [])
                           if o.get('output_type') == 'execute_result')
            if out.strip(): parts.append(f"```\n{out.rstrip()}\n```")
    return "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n" + '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text, readme = readme_text(), ROOT / 'README.md'
    if '--check' in sys.argv[1:]:
        ok = readme.exists() and readme.read_text() == text
        print('README.md is up to date' if ok else 'README.md differs from nbs/index.ipynb: run `make readme`')
        sys.exit(0 if ok else 1)
    readme.write_text(text)
    print(f'wrote {readme}')
