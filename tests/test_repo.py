"""The repository is consistent: the library is what the notebooks export, notebooks are clean, the README is the
front page, `_quarto.yml` lists every chapter, and the packaging files follow nbdev 2 without pkg_resources."""
import filecmp, json, re, shutil, subprocess, sys
import yaml
from conftest import BIN, ROOT, NBS, notebooks

sys.path.insert(0, str(ROOT / 'tools'))


def _copy_repo(tmp_path):
    dst = tmp_path / 'repo'
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    for f in files:
        src = ROOT / f
        if src.is_file() and not src.is_symlink():
            (dst / f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(src, dst / f)
        elif src.is_symlink():
            (dst / f).parent.mkdir(parents=True, exist_ok=True); (dst / f).symlink_to(src.readlink())
    return dst


def test_library_matches_notebooks(tmp_path):
    repo = _copy_repo(tmp_path)
    shutil.rmtree(repo / 'lcr'); (repo / 'lcr').mkdir(); shutil.copy2(ROOT / 'lcr' / '__init__.py', repo / 'lcr')
    r = subprocess.run([str(BIN / 'nbdev_export')], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    made = sorted(p.relative_to(repo / 'lcr') for p in (repo / 'lcr').rglob('*.py'))
    have = sorted(p.relative_to(ROOT / 'lcr') for p in (ROOT / 'lcr').rglob('*.py') if '__pycache__' not in p.parts)
    assert made == have, f"modules differ: exported {made}, committed {have}"
    stale = [str(p) for p in made if not filecmp.cmp(repo / 'lcr' / p, ROOT / 'lcr' / p, shallow=False)]
    assert not stale, f"lcr/ is out of date with the notebooks (run `make export`): {stale}"


def test_notebooks_are_clean(tmp_path):
    repo = _copy_repo(tmp_path)
    r = subprocess.run([str(BIN / 'nbdev_clean')], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dirty = [nb.name for nb in notebooks() if (repo / 'nbs' / nb.name).read_text() != nb.read_text()]
    assert not dirty, f"notebooks not cleaned (run `make export`): {dirty}"


def test_readme_is_the_front_page():
    from make_readme import readme_text
    assert (ROOT / 'README.md').read_text() == readme_text(), 'README.md is stale: run `make readme`'
    text = (ROOT / 'README.md').read_text()
    assert 'make test' in text and 'from lcr.core import' in text
    # the set-up is exactly two commands: the main job and the tests, each a Makefile target that installs first
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert [l for b in blocks[:1] for l in b.splitlines() if l.strip()] == ['make demo', 'make test'], blocks[:1]
    mk = (ROOT / 'Makefile').read_text()
    assert re.search(r"^demo: \$\(STAMP\)\n\t\$\(VENV\)/bin/lcr_demo", mk, re.M) and re.search(r"^test: \$\(STAMP\)", mk, re.M)


def test_quarto_lists_every_chapter():
    from build_docs import quarto_chapters
    listed = [n for _, ns in quarto_chapters(ROOT / '_quarto.yml') for n in ns]
    pages = sorted(nb.name for nb in notebooks()) + sorted(p.name for p in NBS.glob('*.md'))   # chapters and plain pages
    assert sorted(listed) == sorted(pages), f"_quarto.yml sidebar {listed} vs nbs/"
    assert listed[0] == 'index.ipynb'
    cfg = yaml.safe_load((ROOT / '_quarto.yml').read_text())
    assert cfg['project']['type'] == 'website' and (NBS / '_quarto.yml').resolve() == (ROOT / '_quarto.yml').resolve()


def test_packaging_files():
    setup = (ROOT / 'setup.py').read_text()
    assert 'pkg_resources' not in setup.replace('without `pkg_resources`', '')
    ini = (ROOT / 'settings.ini').read_text()
    assert 'nbdev==2.4.14' in ini and 'jupyter-book<2' in ini
    cons = (ROOT / 'constraints.txt').read_text()
    for pin in ('torch==', 'torchvision==', 'nbdev==2.4.14', 'fastcore==1.'): assert pin in cons


def test_outputs_show_no_local_paths():
    "Saved outputs name no folder of the machine that executed them (`python tools/scrub_outputs.py` removes them)."
    from scrub_outputs import main
    assert main(check=True) == [], 'run `python tools/scrub_outputs.py`'
    generic = re.compile(r'/tmp/tmp[0-9A-Za-z_]{6,}|(?<![\w.~])/(?:home|root|work|Users)/\w')
    for p in notebooks():
        for c in json.loads(p.read_text())['cells']:
            for o in c.get('outputs', []):
                text = json.dumps({k: v for k, v in o.get('data', {}).items() if k != 'image/png'}) + json.dumps(o.get('text', ''))
                m = generic.search(text)
                assert m is None, f"{p.name}: output shows a local path near {text[max(0, m.start() - 40):m.end() + 40]!r}"


def test_book_refers_only_to_itself_and_the_paper():
    "The chapters cite their own sections, the paper and public sources; no notes that a reader of the book does not have."
    pat = re.compile(r'\bDESIGN(?:\.md| section)')
    for p in [*notebooks(), ROOT / 'README.md']:
        m = pat.search(p.read_text())
        assert m is None, f"{p.name} refers to a document outside the book near {p.read_text()[max(0, m.start() - 60):m.end() + 20]!r}"
