"End-to-end tests of the console scripts declared in settings.ini: options, errors, and the files they write."
import json, subprocess, sys
import pytest
from conftest import ROOT, BIN

SCRIPTS = ('lcr_train', 'lcr_eval', 'lcr_viz', 'lcr_report', 'lcr_demo', 'lcr_bench_data', 'lcr_bench', 'lcr_experiments')


def run(*args, timeout=600):
    return subprocess.run([str(BIN / args[0]), *map(str, args[1:])], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_scripts_are_declared_and_installed():
    ini = (ROOT / 'settings.ini').read_text()
    for s in SCRIPTS:
        assert f"{s}=" in ini, s
        assert (BIN / s).exists(), f"{s} is not installed: reinstall the package (make install)"


@pytest.mark.parametrize('script,options', [
    ('lcr_train', ['--out', '--resume', '--max_steps', '--max_minutes', '--knn_every', '--root']),
    ('lcr_eval', ['--out', '--probe', '--probe_epochs', '--fractions', '--device', '--seed']),
    ('lcr_viz', ['--out', '--n_images', '--n_queries', '--k_maps']),
    ('lcr_report', ['--out', '--probe', '--probe_epochs', '--fractions', '--device', '--seed', '--figures', '--reuse']),
    ('lcr_demo', ['--out', '--epochs', '--methods', '--device', '--seed', '--probe_epochs', '--progress']),
    ('lcr_experiments', ['--out', '--budget', '--groups', '--seeds', '--names', '--device', '--max_minutes', '--jobs', '--dataset', '--root', '--weights', '--epochs']),
])
def test_help_documents_every_option(script, options):
    r = run(script, '--help')
    assert r.returncode == 0, r.stderr
    for o in options: assert o in r.stdout, (script, o)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp('cli')
    r = run('lcr_train', '--method', 'lcr', '--backbone', 'tiny', '--weights', 'None', '--stem', 'small',
            '--synth_preset', 'small', '--n_images', '64', '--image_size', '32', '--batch_size', '32', '--epochs', '1',
            '--method_kw', '{"queue_size": 64, "tiny_width": 8, "k": 4}', '--device', 'cpu', '--progress', 'none',
            '--out', d / 'lcr_run')
    assert r.returncode == 0, r.stdout + r.stderr
    return d


def test_bad_inputs_fail_before_any_work(tiny_run):
    cases = [
        (('lcr_eval', tiny_run / 'missing'), 'not a training run folder'),
        (('lcr_eval', tiny_run / 'lcr_run', '--probe', 'best'), '--probe must be fast or paper'),
        (('lcr_eval', tiny_run / 'lcr_run', '--fractions', '1,2'), '--fractions must lie in (0, 1]'),
        (('lcr_eval', tiny_run / 'lcr_run', '--device', 'tpu'), "`device` must be"),
        (('lcr_viz', tiny_run / 'lcr_run', '--n_images', '0'), '--n_images and --n_queries must be >= 1'),
        (('lcr_report', tiny_run / 'lcr_run', tiny_run / 'lcr_run'), 'distinct names'),
        (('lcr_demo', '--methods', 'mocov3', '--out', tiny_run / 'd'), 'methods must be names in METHODS'),
        (('lcr_demo', '--epochs', '0', '--out', tiny_run / 'd'), '--epochs must be positive'),
        (('lcr_experiments', '--budget', 'huge', '--out', tiny_run / 'd'), 'budget must be one of'),
        (('lcr_experiments', '--groups', 'main,other', '--out', tiny_run / 'd'), 'groups must be among'),
        (('lcr_experiments', '--seeds', 'a', '--out', tiny_run / 'd'), '--seeds must be comma-separated int'),
        (('lcr_experiments', '--jobs', '0', '--out', tiny_run / 'd'), '--jobs must be at least 1'),
    ]
    (tiny_run / 'notarun').mkdir()
    (tiny_run / 'notarun' / 'checkpoint.pt').write_bytes(b'garbage')
    cases.append((('lcr_eval', tiny_run / 'notarun'), 'not a readable checkpoint'))
    for args, msg in cases:
        r = run(*args)
        assert r.returncode != 0 and msg in r.stderr, (args, r.stdout[-500:], r.stderr[-1500:])
        assert 'Traceback' not in r.stderr, (args, r.stderr[-1500:])
    assert not (tiny_run / 'd').exists()


def test_eval_viz_report_write_their_files(tiny_run):
    run_dir = tiny_run / 'lcr_run'
    r = run('lcr_eval', run_dir, '--probe_epochs', '3', '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((run_dir / 'eval' / 'metrics.json').read_text())
    assert set(m['retrieval']) == {'rank1', 'rank5', 'mAP'} and set(m['linear_probe']) == {'100%', '50%', '20%'}
    assert all(0 <= v <= 1 for v in m['retrieval'].values())
    assert '| lcr_run | lcr | paper |' in (run_dir / 'eval' / 'metrics.md').read_text()
    r = run('lcr_viz', run_dir, '--out', tiny_run / 'figs', '--n_images', '2', '--n_queries', '2')
    assert r.returncode == 0, r.stderr[-3000:]
    for f in ('loss_curves.png', 'attention.png', 'retrieval_lcr_run.png'):
        assert (tiny_run / 'figs' / f).stat().st_size > 3000, f
    r = run('lcr_report', run_dir, '--out', tiny_run / 'rep', '--probe_epochs', '3', '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'report:' in r.stdout and (tiny_run / 'rep' / 'report.md').exists()
    assert 'Mass on the true parts' in (tiny_run / 'rep' / 'report.md').read_text()


def test_experiments_in_parallel(tmp_path):
    "The console script trains a study's runs in spawned workers: every run evaluated, the study's tables written."
    r = run('lcr_experiments', '--budget', 'minimal', '--names', 'mocov2,lcr', '--device', 'cpu', '--jobs', '2',
            '--out', tmp_path / 'study')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert '2 runs trained, 0 already done' in r.stdout, r.stdout
    for name in ('mocov2', 'lcr'):
        m = json.loads((tmp_path / 'study' / name / 'seed0' / 'eval' / 'metrics.json').read_text())
        assert m['name'] == name and m['torch_threads'] >= 1 and 0 <= m['retrieval']['rank1'] <= 1
    assert '| lcr | 0 |' in (tmp_path / 'study' / 'study.md').read_text()
    r = run('lcr_experiments', '--budget', 'minimal', '--names', 'mocov2,lcr', '--device', 'cpu', '--jobs', '2',
            '--out', tmp_path / 'study')
    assert r.returncode == 0 and '0 runs trained, 2 already done' in r.stdout, r.stdout + r.stderr[-2000:]


def test_gpu_checks_script(tmp_path):
    "tools/gpu_checks.sh is valid bash, runs each part as a module of the source tree, and refuses clearly without CUDA."
    script = ROOT / 'tools' / 'gpu_checks.sh'
    assert subprocess.run(['bash', '-n', str(script)]).returncode == 0
    text = script.read_text()
    for part, module in (('bench', 'lcr.bench'), ('data', 'lcr.augment'), ('e2e', 'lcr.train'), ('study', 'lcr.experiments')):
        assert f"{part})" in text and f"-m {module} " in text, part
        r = subprocess.run([sys.executable, '-m', module, '--help'], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert r.returncode == 0 and r.stdout.startswith('usage:'), (module, r.stderr)
    import torch
    if torch.cuda.is_available(): pytest.skip('a GPU is present: the script would run its measurements')
    r = subprocess.run(['bash', str(script), str(tmp_path / 'out'), 'bench'], capture_output=True, text=True, cwd=ROOT,
                       env={'PATH': '/usr/bin:/bin', 'PYTHON': sys.executable}, timeout=120)
    assert r.returncode != 0 and 'CUDA is not available' in r.stderr, r.stderr
    assert not (tmp_path / 'out' / 'bench.log').exists()
