"End-to-end tests of the console scripts declared in settings.ini: options, errors, and the files they write."
import json, math, os, shlex, shutil, subprocess, sys, time, warnings
import pytest
from concurrent.futures import ThreadPoolExecutor
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
    with ThreadPoolExecutor(2) as pool:          # independent processes, two at a time (the CI machine's cores)
        done = list(pool.map(lambda c: run(*c[0]), cases))
    for (args, msg), r in zip(cases, done):
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


TINY = ['--method', 'lcr', '--backbone', 'tiny', '--weights', 'None', '--stem', 'small', '--synth_preset', 'small',
        '--image_size', '32', '--method_kw', '{"queue_size": 64, "tiny_width": 8, "proj_dim": 32}', '--device', 'cpu',
        '--progress', 'none']


def test_two_runs_cannot_share_a_folder(tmp_path):
    "Two real lcr_train processes into one folder: the second stops at once and writes nothing; after the first is killed, the folder is free again."
    from lcr.runs import read_metrics, load_checkpoint
    out, env = tmp_path / 'run', {**os.environ, 'OMP_NUM_THREADS': '1'}
    long = [*TINY, '--n_images', '1920', '--batch_size', '2', '--epochs', '100', '--log_every', '1', '--out', out]
    a = subprocess.Popen([str(BIN / 'lcr_train'), *map(str, long)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=ROOT)
    try:
        log, deadline = out / 'metrics.jsonl', time.monotonic() + 300
        while a.poll() is None and not (log.exists() and b'\n' in log.read_bytes()):   # wait for the first's first step
            assert time.monotonic() < deadline, 'the first run logged no step'
            time.sleep(0.05)
        assert a.poll() is None, a.stderr.read()
        b = run('lcr_train', *long, '--seed', '1')                     # another seed (the last value wins), same folder
        assert a.poll() is None, 'the first run ended while the second was tried'
        assert b.returncode == 1 and 'is in use by another training run (pid' in b.stderr, b.stderr[-2000:]
        assert len(b.stderr.strip().splitlines()) == 1, b.stderr
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')      # the line being written may be torn
            steps = [r['global_step'] for r in read_metrics(log)]
        assert steps == list(range(1, len(steps) + 1)), steps       # the first run's records only
        if (out / 'checkpoint.pt').exists(): assert load_checkpoint(out / 'checkpoint.pt')['train_config']['seed'] == 0
    finally:
        a.kill(); a.wait()
    r = run('lcr_train', *TINY, '--n_images', '64', '--batch_size', '16', '--epochs', '1', '--out', out)
    assert r.returncode == 0, r.stderr[-2000:]                     # the lock went with the killed process
    assert 'never wrote a checkpoint' in r.stderr and (out / 'metrics.abandoned.jsonl').exists(), r.stderr


def test_full_disk(tmp_path):
    "A run on a real 1.6 MB tmpfs (a user namespace; skipped where none can be made) fills it: one line, and the last checkpoint intact."
    d = tmp_path / 'disk'; d.mkdir()
    mount = f"mount -t tmpfs -o size=1600k tmpfs {shlex.quote(str(d))}"
    ns = ['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c']
    if not shutil.which('unshare') or subprocess.run([*ns, mount], capture_output=True).returncode:
        pytest.skip('no user namespace with a tmpfs on this machine (chapter 6 fails a write with a file-size limit instead)')
    train = shlex.join([str(BIN / 'lcr_train'), *TINY, '--n_images', '64', '--batch_size', '16', '--epochs', '2',
                        '--out', str(d / 'run')])
    check = shlex.join([sys.executable, '-c', "import sys, os; from lcr.runs import load_checkpoint; "
                        f"print('step', load_checkpoint(sys.argv[1])['global_step'], sorted(os.listdir(sys.argv[2])))",
                        str(d / 'run' / 'checkpoint.pt'), str(d / 'run')])
    r = subprocess.run([*ns, f"{mount} && {{ {train}; echo status $?; {check}; }}"], capture_output=True, text=True,
                       cwd=ROOT, timeout=600, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('lcr_train: error: cannot write'), r.stderr[-3000:]
    assert 'No space left on device' in lines[0] and 'holds the last good state (global step 4)' in lines[0], lines
    assert 'status 1' in r.stdout and "step 4 ['.lock', 'checkpoint.pt', 'metrics.jsonl']" in r.stdout, r.stdout


def test_training_data_errors_are_one_line(tmp_path):
    "Errors found inside training (data, batch, weights) reach the shell as one line and status 1, never a traceback."
    from PIL import Image
    import numpy as np
    g = np.random.default_rng(0)
    for i in range(8):
        p = tmp_path / 'data' / 'train' / f"c{i % 2}" / f"{i}.png"; p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(g.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(p)
    (tmp_path / 'data' / 'train' / 'c0' / '2.png').write_bytes(b'not a png')
    (tmp_path / 'bad.pth').write_bytes(b'not weights')
    folder = lambda root: ['--dataset', 'folder', '--root', root, '--n_images', 'None', '--cache_size', '36', '--batch_size', '4']
    cases = [(folder(tmp_path / 'nowhere'), 'data set root not found'),
             (folder(tmp_path / 'data'), 'cannot decode image'),
             (['--n_images', '64', '--batch_size', '128'], 'fewer than one batch of 128'),
             (['--n_images', '64', '--backbone', 'resnet18', '--weights', tmp_path / 'bad.pth'], 'are not a state dict')]
    for i, (opts, says) in enumerate(cases):
        r = run('lcr_train', *TINY, '--epochs', '1', '--out', tmp_path / f'run{i}', *opts)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith('lcr_train: error: ') and says in lines[0], (opts, r.stderr[-2000:])


def test_ctrl_c_says_where_to_resume(tmp_path):
    "SIGINT (Ctrl-C) to a real lcr_train: one line naming the checkpoint and the command that continues the run, status 130; that command finishes the run."
    import signal
    from lcr.runs import load_checkpoint
    out, env = tmp_path / 'run', {**os.environ, 'OMP_NUM_THREADS': '1'}
    args = [*TINY, '--n_images', '64', '--batch_size', '16', '--epochs', '6', '--log_every', '1', '--ckpt_every_steps', '2',
            '--out', out]
    # SIGINT's default action in the child, even where this process ignores it (a background job of a script does)
    p = subprocess.Popen([str(BIN / 'lcr_train'), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log, deadline = out / 'metrics.jsonl', time.monotonic() + 300
    while p.poll() is None and not (log.exists() and log.read_bytes().count(b'\n') >= 3):    # three steps done
        assert time.monotonic() < deadline, 'the run logged no step'
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 130, (p.returncode, err[-3000:])
    last = err.strip().splitlines()[-1]
    assert 'Traceback' not in err and last.startswith('lcr_train: interrupted: ') and 'holds global step' in last, err[-3000:]
    g = load_checkpoint(out / 'checkpoint.pt')['global_step']
    assert f"{out / 'checkpoint.pt'} holds global step {g}; continue with: lcr_train " in last, last
    cmd = shlex.split(last.split('continue with: ')[1])
    assert cmd[0] == 'lcr_train' and cmd[-2:] == ['--resume', 'True'], cmd
    r = run(*cmd)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_checkpoint(out / 'checkpoint.pt')['global_step'] == 6 * 4


def test_table3_frameworks_train_through_the_cli(tmp_path):
    "Two of Table 3's frameworks train through `lcr_train`: SimCLR with the branch, and DINO, following the progress."
    common = ['--backbone', 'tiny', '--weights', 'None', '--stem', 'small', '--synth_preset', 'small',
              '--n_images', '64', '--image_size', '32', '--batch_size', '16', '--epochs', '1', '--device', 'cpu',
              '--progress', 'none', '--log_every', '1', '--method_kw', '{"tiny_width": 8, "k": 4}']
    steps = {}
    for method in ('simclr_lcr', 'dino'):
        r = run('lcr_train', '--method', method, *common, '--out', tmp_path / method)
        assert r.returncode == 0, r.stdout + r.stderr
        recs = [json.loads(l) for l in (tmp_path / method / 'metrics.jsonl').read_text().splitlines()]
        steps[method] = [s for s in recs if s['kind'] == 'step']
        assert len(steps[method]) == 4 and all(math.isfinite(s['loss']) for s in steps[method]), steps[method]
    assert all(s['loss_kl'] > 0 for s in steps['simclr_lcr'])                   # the branch is fitted
    # the loop's progress before each of the 4 steps: 0, 1/4, 1/2, 3/4; the warm-up lasts 30% of the run
    assert [round(s['teacher_temp'], 6) for s in steps['dino']] == [0.04, 0.065, 0.07, 0.07], steps['dino']
    bad = ['--method_kw', '{"temperature": 0.5}', '--out', tmp_path / 'x']
    r = run('lcr_train', '--method', 'simsiam', *common[:-2], *bad)
    assert r.returncode != 0 and "`temperature` is not an option of method 'simsiam'" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
