"""Replace local absolute paths in saved notebook outputs: temporary folders become `<tmp>`, the repository root and
the home folder are dropped, so the book shows no paths of the machine that executed it. `--check` only reports."""
import json, re, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def patterns():
    tmp = re.escape(tempfile.gettempdir().rstrip('/'))
    return [(re.compile(tmp + r'/tmp[0-9A-Za-z_]+'), '<tmp>'),
            (re.compile(tmp + r'/ipykernel_[0-9]+/[0-9]+\.py'), '<cell>'),     # a warning raised by a notebook cell
            (re.compile(re.escape(str(ROOT)) + '/?'), ''),
            (re.compile(re.escape(str(Path.home())) + '/?'), '~/')]


def scrub(obj, pats):
    if isinstance(obj, str):
        for p, r in pats: obj = p.sub(r, obj)
        return obj
    if isinstance(obj, list): return [scrub(x, pats) for x in obj]
    if isinstance(obj, dict): return {k: (v if k == 'image/png' else scrub(v, pats)) for k, v in obj.items()}
    return obj


def main(check=False):
    pats, dirty = patterns(), []
    for p in sorted((ROOT / 'nbs').glob('*.ipynb')):
        nb = json.loads(p.read_text())
        new = [scrub(c.get('outputs', []), pats) for c in nb['cells']]
        if new != [c.get('outputs', []) for c in nb['cells']]:
            dirty.append(p.name)
            if not check:
                for c, o in zip(nb['cells'], new):
                    if 'outputs' in c: c['outputs'] = o
                p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return dirty


if __name__ == '__main__':
    d = main(check='--check' in sys.argv)
    print(('outputs with local paths: ' if '--check' in sys.argv else 'scrubbed: ') + (', '.join(d) or 'none'))
    sys.exit(1 if d and '--check' in sys.argv else 0)
