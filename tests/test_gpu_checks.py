"""The GPU run (`tools/gpu_checks.sh`) kept working without a GPU: its dry run goes through every part at toy sizes on
the CPU — the same commands, files and record as on the GPU, only the `torch.cuda` calls untried — and its record,
budget, refusals and helpers are checked here."""
import json, os, signal, subprocess, sys, time
import pytest
import torch
from conftest import ROOT

sys.path.insert(0, str(ROOT / 'tools'))
import gpu_checks as gc
from lcr.bench import GPU_PARTS, GPU_PLAN, read_gpu_record, format_gpu_record

SCRIPT = ROOT / 'tools' / 'gpu_checks.sh'


def script(*args, timeout=300):
    return subprocess.run(['bash', str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env=dict(os.environ, PYTHON=sys.executable))


def figures(rec, part): return {f['name']: f for f in rec['parts'][part]['figures']}


@pytest.fixture(scope='module')
def dry(tmp_path_factory):
    "One dry run of every part (about a minute on two cores), then a second call that resumes the study."
    tmp = tmp_path_factory.mktemp('gpu_checks')
    first = script('--dry-run', '--out', tmp / 'rec', '--work', tmp / 'work')
    second = script('--dry-run', '--out', tmp / 'rec', '--work', tmp / 'work', 'study')
    return tmp, first, second


def test_dry_run_runs_every_part_in_order(dry):
    tmp, r, _ = dry
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert out.startswith('tools/gpu_checks.sh (DRY RUN on the CPU, toy sizes): bench data e2e cells study')
    marks = [out.index(f'[{p}] estimate ') for p in GPU_PARTS] + [out.index('[study] ok in ')]
    assert marks == sorted(marks), 'the parts run in the plan order, each estimate printed before the part'
    for p in GPU_PARTS: assert out.index(f'[{p}] estimate ') < out.index(f'[{p}] ok in '), p
    w = tmp / 'work'
    for f in ('bench/bench.json', 'e2e/metrics.jsonl', 'e2e/checkpoint.pt', 'study/study.md', 'logs/bench.log',
              'logs/data.log', 'logs/e2e.log', 'logs/study.log', 'logs/cells/toy_cuda.ipynb.log',
              'cells_dry/cuda_cell_ran.txt'):
        assert (w / f).exists(), f
    assert not (w / 'data_cache').exists(), 'the data part removes the images it wrote'


def test_dry_run_record(dry):
    tmp, r, _ = dry
    rec = read_gpu_record(tmp / 'rec', dry_run=True)
    assert rec['dry_run'] is True and rec['schema'] == 1
    c = rec['calls'][0]
    assert c['torch'] == torch.__version__ and c['device'] == 'cpu' and c['device_name'] and c['date'] and c['lcr']
    assert c['command'].startswith('tools/gpu_checks.sh --dry-run') and c['minutes'] == 7.5 and c['seconds'] > 0
    assert list(rec['parts']) == list(GPU_PARTS)
    for p, e in rec['parts'].items():
        assert e['status'] == 'ok' and e['call'] == (1 if p == 'study' else 0) and e['returncode'] == 0, (p, e)   # call 2 reran the study
        assert e['seconds'] > 0 and e['bound_s'] > 0 and e['commands'] and e['figures'], p
        assert all(f['command'] in e['commands'] for f in e['figures']), p
        assert all(f['command'].startswith('python -m ') for f in e['figures']), p
    assert [e['estimate_s'] is None for e in rec['parts'].values()] == [False] * 4 + [True]
    b = figures(rec, 'bench')
    assert {'lcr/mocov2', 'lcr/ceiling', 'retrieval/product', 'lcr step: ms', 'mocov2 step: ms'} <= set(b)
    assert b['lcr/mocov2']['target'] == ['<=', 1.05] and b['lcr/mocov2']['met'] == (b['lcr/mocov2']['value'] <= 1.05)
    bench = json.loads((tmp / 'work' / 'bench' / 'bench.json').read_text())
    assert b['lcr/mocov2']['value'] == bench['ratios']['lcr/mocov2'] and bench['config']['retrieval_n'] == 300
    d = figures(rec, 'data')
    assert set(d) == {'PIL (released)', 'CPU transforms v2', 'batch pipeline (cpu)'} and all(f['value'] > 0 for f in d.values())
    e = figures(rec, 'e2e')
    spe = 64 // 16
    assert e['steps of the whole run']['value'] == 100 * spe and 1 <= e['steps done']['value'] < 100 * spe
    assert e['epochs done']['value'] == e['steps done']['value'] / spe
    assert e['projected wall time of 100 epochs']['value'] > e["the loop's projection of the whole run"]['value'] > 0
    assert 'target' not in e['projected wall time of 100 epochs'], "the four-minute target is the GPU's"
    assert '--max_minutes' in rec['parts']['e2e']['commands'][0]
    cells = rec['parts']['cells']
    assert list(figures(rec, 'cells')) == ['toy_cuda.ipynb (1 cuda cells): passed'] and '--flags cuda' in cells['commands'][0]
    assert cells['notes']['left out'] == {}
    s = figures(rec, 'study')
    assert s['study runs finished']['value'] == s['study runs in the budget']['value'] == 2
    assert (tmp / 'rec' / 'gpu_checks.md').read_text() == format_gpu_record(rec) + '\n'


def test_second_call_extends_the_record_and_resumes_the_study(dry):
    tmp, _, r = dry
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert '0 runs trained, 2 already done' in r.stdout
    rec = read_gpu_record(tmp / 'rec', dry_run=True)
    assert len(rec['calls']) == 2 and rec['calls'][1]['command'] == f"tools/gpu_checks.sh --dry-run --out {tmp / 'rec'} --work {tmp / 'work'} study"
    assert rec['parts']['bench']['call'] == 0 and rec['parts']['study']['call'] == 1
    assert list(rec['parts']) == list(GPU_PARTS)


def refusal(argv, capsys):
    "The exit status and message of the driver called in-process with `argv`."
    with pytest.raises(SystemExit) as e: gc.main([str(a) for a in argv])
    return e.value.code, capsys.readouterr().err


def test_refusals_write_nothing(tmp_path, capsys):
    records = ROOT / 'records' / 'gpu'
    before = sorted((p.name, p.stat().st_mtime_ns) for p in records.iterdir())
    code, err = refusal(['--dry-run', '--out', records], capsys)
    assert code == 2 and "never goes to records/gpu" in err, err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in records.iterdir()) == before
    code, err = refusal(['--dry-run', '--out', tmp_path / 'o', 'bench', 'warp'], capsys)
    assert code == 2 and "unknown part(s) ['warp']" in err, err
    code, err = refusal(['--dry-run', '--out', tmp_path / 'o', '--minutes', '0'], capsys)
    assert code == 2 and '--minutes must be positive' in err, err
    assert not (tmp_path / 'o').exists()
    (tmp_path / 'dry').mkdir(); (tmp_path / 'dry' / 'gpu_checks.json').write_text('{"record": ')
    with pytest.raises(SystemExit, match='is not valid JSON'):
        gc.main(['--dry-run', '--out', str(tmp_path / 'dry'), '--work', str(tmp_path / 'w'), 'bench'])
    assert not (tmp_path / 'w').exists()
    assert (tmp_path / 'dry' / 'gpu_checks.json').read_text() == '{"record": ', 'a broken record is left as it was'


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present: the script would run its measurements')
def test_without_cuda_the_script_refuses_and_names_the_dry_run(tmp_path):
    r = script('--out', tmp_path / 'g', timeout=120)
    assert r.returncode == 1 and 'CUDA is not available here' in r.stderr and '--dry-run' in r.stderr, r.stderr
    assert not (tmp_path / 'g').exists()


def test_budget_leaves_the_later_parts_their_least_time():
    mins = {p['part']: p['min_s'] for p in GPU_PLAN}
    bounds = {p['part']: p['bound_s'] for p in GPU_PLAN}
    assert gc.budget_for('bench', GPU_PARTS, 600) == bounds['bench']
    assert gc.budget_for('bench', GPU_PARTS, 400) == 400 - mins['data'] - mins['e2e'] - mins['cells']
    assert gc.budget_for('bench', ['bench', 'study'], 300) == bounds['bench']    # the study takes only what is left
    assert gc.budget_for('study', GPU_PARTS, 77) == 77
    assert gc.budget_for('cells', GPU_PARTS, 40) == 40                            # less than its minimum: not run


def test_budget_too_small_runs_nothing_and_keeps_earlier_entries(tmp_path, capsys):
    argv = ['--dry-run', '--out', str(tmp_path / 'o'), '--work', str(tmp_path / 'w'), '--minutes', '0.5', 'e2e']
    assert gc.main(argv) == 0
    assert '[e2e] not run: ' in capsys.readouterr().out
    rec = read_gpu_record(tmp_path / 'o', dry_run=True)
    assert rec['parts']['e2e']['status'] == 'not run' and 'run `tools/gpu_checks.sh e2e` again' in rec['parts']['e2e']['reason']
    rec['parts']['e2e'].update(status='ok', figures=[])           # as if an earlier call had run it
    gc.write_gpu_record(rec, tmp_path / 'o')
    assert gc.main(argv) == 0
    assert 'the record keeps its entry from call 1' in capsys.readouterr().out
    rec = read_gpu_record(tmp_path / 'o', dry_run=True)
    assert rec['parts']['e2e']['status'] == 'ok' and len(rec['calls']) == 2


def test_a_part_past_its_bound_is_killed_with_its_process_group(tmp_path):
    t0 = time.monotonic()
    rc, s = gc.run_logged(['bash', '-c', 'sleep 60 & echo started; wait'], tmp_path / 'log', 2, echo=False)
    assert rc is None and 2 <= s < 30 and time.monotonic() - t0 < 30
    log = (tmp_path / 'log').read_text()
    assert 'started' in log and "killed after 2 s, the part's time bound" in log
    rc, s = gc.run_logged([sys.executable, '-c', 'print("fine")'], tmp_path / 'log2', 60, echo=False)
    assert rc == 0 and 'fine' in (tmp_path / 'log2').read_text()


def test_e2e_figures_come_from_the_time_limit_record():
    stop = dict(kind='time_limit', global_step=92, total_steps=4600, epochs=100, elapsed_s=90.0, setup_s=25.0,
                steps_per_s=14.0, projected_total_s=25.0 + 4600 / 14.0)
    metrics = [dict(kind='step', global_step=10, time=1.0), dict(kind='epoch', epoch=1, global_step=46, time=4.0), stop]
    f = {x['name']: x for x in gc.e2e_figures(metrics, 100.0, 128, 'cmd', ('<=', 240))}
    assert f['epochs done']['value'] == 2 and f['steps done']['value'] == 92 and f['loop throughput']['value'] == 14 * 128
    assert f['process start and exit (wall - elapsed)']['value'] == 10
    p = f['projected wall time of 100 epochs']
    assert p['value'] == 25 + 4600 / 14 + 10 and p['target'] == ['<=', 240] and p['met'] is False
    done = [dict(kind='epoch', epoch=e, global_step=46 * e, time=2.0 * e) for e in range(1, 101)]
    f = {x['name']: x for x in gc.e2e_figures(done, 230.0, 128, 'cmd', ('<=', 240))}
    assert f['wall time of 100 epochs']['value'] == 230 and f['wall time of 100 epochs']['met'] is True
    with pytest.raises(gc.GpuChecksError, match="no 'time_limit' record"): gc.e2e_figures(done[:5], 10.0, 128, 'cmd')


def test_cells_part_selects_the_notebooks_with_cuda_cells(tmp_path):
    nbs = gc.cuda_notebooks(ROOT / 'nbs')
    assert nbs and all(n >= 1 for n in nbs.values()) and '09_bench.ipynb' in nbs
    assert set(gc.CELLS_SKIP) <= set(nbs), 'a notebook left out must have cuda cells'
    import nbformat
    for name, cells in (('a.ipynb', ['x = 1', '#| cuda\nx']), ('b.ipynb', ['x = 1']), ('c.ipynb', ['#|cuda2\nx'])):
        nb = nbformat.v4.new_notebook(); nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
        nb.cells.append(nbformat.v4.new_markdown_cell('#| cuda'))     # prose naming the flag is no cuda cell
        nbformat.write(nb, tmp_path / name)
    assert gc.cuda_notebooks(tmp_path) == {'a.ipynb': 1}


def test_a_stopped_driver_ends_the_running_part(tmp_path):
    "SIGTERM to the driver ends the part it runs (in a session of its own, which the caller's kill would not reach)."
    code = (f"import sys, signal; sys.path.insert(0, {str(ROOT / 'tools')!r}); import gpu_checks as gc\n"
            "signal.signal(signal.SIGTERM, gc.stop_running)\n"
            f"gc.run_logged(['bash', '-c', 'sleep 60 & echo $! > {tmp_path}/pid; wait'], {str(tmp_path / 'log')!r}, 120, echo=False)")
    p = subprocess.Popen([sys.executable, '-c', code])
    for _ in range(600):
        if (tmp_path / 'pid').exists() and (tmp_path / 'pid').read_text().strip(): break
        time.sleep(0.1)
    sleeper = int((tmp_path / 'pid').read_text())
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 128 + signal.SIGTERM
    for _ in range(100):
        try: os.kill(sleeper, 0)
        except ProcessLookupError: break
        time.sleep(0.1)
    else: pytest.fail('the part outlived the driver')
