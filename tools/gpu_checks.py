"""The book's GPU measurements in one call sized to a short GPU window, and its CPU dry run.

    tools/gpu_checks.sh [--out DIR] [--work DIR] [--minutes M] [--dry-run] [PART ...]   PART: bench data e2e cells study

The parts run in the order of `lcr.bench.GPU_PLAN` (their value), each bounded in time, all within `--minutes` of
wall time (default `GPU_MINUTES`); the study takes what is left and is resumable: call again with `study` to go on.
After each part the record is (re)written: `DIR/gpu_checks.json` (environment, every figure with its command) and
`DIR/gpu_checks.md` (the same as tables). A record already in DIR is extended: a part run again replaces its entry.
`--dry-run` runs every part at toy sizes on the CPU through the same commands and files (only `torch.cuda` goes
untried) and marks its record as a dry run; it never writes into records/gpu. Logs and outputs go to `--work`.
The script installs nothing: it runs the source tree (PYTHONPATH=.) with the packages present."""
import argparse, json, os, re, shlex, signal, subprocess, sys, threading, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import torch
from lcr.bench import (GPU_PLAN, GPU_PARTS, GPU_MINUTES, E2E_MINUTES, CUB_SIZE, TARGETS, PIPELINE_TARGET,
                       gpu_estimates, bench_environment, read_gpu_record, write_gpu_record)

PROG = 'tools/gpu_checks.sh'
RECORDS = ROOT / 'records' / 'gpu'
STUDY_JOBS = 8
# notebooks whose `cuda` cells the `cells` part leaves out, and why (a cell no time bound can stop)
CELLS_SKIP = {'10_experiments.ipynb': "its `cuda` cell runs the whole `gpu` study (hours); the `study` part runs it, "
                                      "bounded and resumable"}
DRY = dict(   # the toy sizes of the dry run
    bench=['--mode', 'cpu', '--image_size', '32', '--batch_size', '8', '--warmup', '1', '--repeats', '2',
           '--queue_size', '64', '--pipeline_images', '16', '--retrieval_n', '300', '--retrieval_d', '32',
           '--retrieval_queries', '20'],
    data=['--preset', 'small', '--n_images', '64', '--size', '32', '--batch_size', '16', '--n_batches', '2',
          '--workers', '1', '--device', 'cpu'],
    e2e=['--backbone', 'tiny', '--stem', 'small', '--synth_preset', 'small', '--n_images', '64', '--image_size', '32',
         '--batch_size', '16', '--method_kw', '{"queue_size": 64}', '--device', 'cpu', '--log_every', '2',
         '--max_minutes', '0.1'],
    study=['--budget', 'minimal', '--names', 'mocov2,lcr', '--device', 'cpu', '--jobs', '2'])


class GpuChecksError(Exception): pass


def rel(p) -> str:
    "`p` relative to the repository root where it lies inside it (a record names no folder of the machine)."
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def show(argv) -> str:
    "The command line as a user types it from the repository root."
    return shlex.join(['python' if a == sys.executable else rel(a) if isinstance(a, Path) else str(a) for a in argv])


def module(name, *args): return [sys.executable, '-m', name, *args]


RUNNING = set()     # process groups of the parts running now (each part runs in a session of its own)

def stop_running(signum, frame):
    "On SIGTERM or SIGINT: end the running parts' process groups (nothing else), then exit; the record holds the parts done."
    for pid in list(RUNNING):
        try: os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError: pass
    sys.exit(128 + signum)


def run_logged(argv, log, timeout_s, env=None, echo=True):
    "Run `argv` from the root, its output to `log` (and to ours with `echo`), killed with its process group after `timeout_s`; (exit status or None when killed, seconds)."
    t0 = time.monotonic()
    with open(log, 'a') as f:
        f.write(f"$ {show(argv)}\n"); f.flush()
        p = subprocess.Popen([str(a) for a in argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
        RUNNING.add(p.pid)
        def pump():
            for line in p.stdout:
                f.write(line); f.flush()
                if echo: print('    ' + line, end='', flush=True)
        th = threading.Thread(target=pump, daemon=True); th.start()
        try: rc = p.wait(timeout=max(timeout_s, 1))
        except subprocess.TimeoutExpired:
            rc = None
            os.killpg(p.pid, signal.SIGTERM)           # the group this call started: the part and its workers
            try: p.wait(timeout=15)
            except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL); p.wait()
        th.join(timeout=5)
        RUNNING.discard(p.pid)
        if rc is None: f.write(f"[killed after {timeout_s:.0f} s, the part's time bound]\n")
    return rc, time.monotonic() - t0


def child_env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get('PYTHONPATH')] if p]),
               PYTHONUNBUFFERED='1', **extra)
    return env


def figure(name, value, unit, command, target=None):
    "One figure of the record; `target` is ('<=' or '>=', bound)."
    f = dict(name=name, value=value, unit=unit, command=command)
    if target is not None and value is not None:
        f['target'] = list(target)
        f['met'] = bool(value <= target[1]) if target[0] == '<=' else bool(value >= target[1])
    return f


# --- the parts: each returns (commands run, figures, exit status or None when killed, notes) -----------------------

def part_bench(work, dry, bound_s):
    out = work / 'bench'
    argv = module('lcr.bench', *(DRY['bench'] if dry else ['--mode', 'gpu']), '--out', out)
    rc, _ = run_logged(argv, work / 'logs' / 'bench.log', bound_s, child_env())
    cmd, figs = show(argv), []
    if rc == 0:
        res = json.loads((out / 'bench.json').read_text())
        for k, v in res['ratios'].items():
            figs.append(figure(k, v, 'ratio', cmd, ('<=', TARGETS[k]) if k in TARGETS else None))
        for r in res['rows']:
            figs.append(figure(f"{r['name']}: ms", r['ms'], 'ms', cmd))
            if r['rate'] is not None:
                tgt = ('>=', PIPELINE_TARGET) if r['section'] == 'data' and not dry else None
                figs.append(figure(f"{r['name']}: {r['unit']}", r['rate'], r['unit'], cmd, tgt))
            if r['peak_mem_gib'] is not None: figs.append(figure(f"{r['name']}: peak memory", r['peak_mem_gib'], 'GiB', cmd))
    return [cmd], figs, rc, None


DATA_LINE = re.compile(r'^\s*(PIL \(released\)|CPU transforms v2|batch pipeline \(\w+\)):\s+([\d.]+) view pairs/s', re.M)

def part_data(work, dry, bound_s):
    cache = work / 'data_cache'
    args = DRY['data'] if dry else ['--preset', 'cub', '--n_images', '1280', '--batch_size', '256', '--n_batches', '4']
    argv = module('lcr.augment', *args, '--root', cache)
    log = work / 'logs' / 'data.log'
    start = log.stat().st_size if log.exists() else 0
    try: rc, _ = run_logged(argv, log, bound_s, child_env())
    finally: subprocess.run(['rm', '-rf', str(cache)])
    cmd, figs = show(argv), []
    if rc == 0:
        found = DATA_LINE.findall(log.read_text()[start:])
        if len(found) != 3: raise GpuChecksError(f"data: expected 3 'view pairs/s' lines in {rel(log)}, found {len(found)}")
        figs = [figure(name, float(v), 'pairs/s', cmd) for name, v in found]
    return [cmd], figs, rc, None


def e2e_figures(metrics, wall_s, batch_size, cmd, target=None):
    "The e2e figures from the run's `metrics.jsonl` records: its `time_limit` record (steps done, step rate, projection) where the time limit stopped it, else its wall time if it finished."
    epochs_done = [r for r in metrics if r.get('kind') == 'epoch']
    stops = [r for r in metrics if r.get('kind') == 'time_limit']
    if not stops:
        cfg_epochs = CUB_SIZE['epochs']
        if epochs_done and epochs_done[-1]['epoch'] == cfg_epochs:
            return [figure('epochs done', cfg_epochs, 'epochs', cmd), figure(f'wall time of {cfg_epochs} epochs', wall_s, 's', cmd, target)]
        raise GpuChecksError("e2e: the run neither finished nor reached its time limit (no 'time_limit' record): no projection")
    r = stops[-1]
    spe = r['total_steps'] / r['epochs']
    overhead = max(wall_s - r['elapsed_s'], 0.0)        # interpreter, imports and exit, outside the loop's own clock
    return [figure('epochs done', r['global_step'] / spe, 'epochs', cmd), figure('steps done', r['global_step'], 'steps', cmd),
            figure('steps of the whole run', r['total_steps'], 'steps', cmd),
            figure('set-up in lcr_train (data, model)', r['setup_s'], 's', cmd),
            figure('loop throughput', r['steps_per_s'] * batch_size, 'images/s', cmd),
            figure("the loop's projection of the whole run", r['projected_total_s'], 's', cmd),
            figure('process start and exit (wall - elapsed)', overhead, 's', cmd),
            figure(f"projected wall time of {r['epochs']} epochs", r['projected_total_s'] + overhead, 's', cmd, target)]


def part_e2e(work, dry, bound_s):
    out = work / 'e2e'
    subprocess.run(['rm', '-rf', str(out)])      # a fresh run: the figures time a start from nothing
    c = CUB_SIZE
    base = ['--method', 'lcr', '--weights', 'None', '--dataset', 'synthetic', '--epochs', str(c['epochs']),
            '--progress', 'print', '--out', out]
    args = DRY['e2e'] if dry else ['--backbone', 'resnet50', '--synth_preset', 'cub', '--batch_size', str(c['batch_size']),
                                   '--device', 'cuda', '--max_minutes', str(E2E_MINUTES)]
    argv = module('lcr.train', *base, *args)
    rc, wall = run_logged(argv, work / 'logs' / 'e2e.log', bound_s, child_env())
    cmd, figs = show(argv), []
    if rc == 0:
        bs = int(args[args.index('--batch_size') + 1])
        mp = out / 'metrics.jsonl'
        figs = e2e_figures([json.loads(l) for l in mp.read_text().splitlines() if l.strip()], wall, bs, cmd,
                           None if dry else ('<=', 240))        # the design's four minutes on one H100
    return [cmd], figs, rc, None


def cuda_notebooks(folder) -> dict:
    "{notebook name: number of `#| cuda` cells} of the notebooks in `folder` that have any."
    res = {}
    for p in sorted(Path(folder).glob('*.ipynb')):
        n = sum(1 for c in json.loads(p.read_text())['cells']
                if c['cell_type'] == 'code' and any(l.strip() == '#| cuda' for l in ''.join(c['source']).splitlines()))
        if n: res[p.name] = n
    return res


TOY_NOTEBOOK = [
    "import torch\nfrom lcr.bench import time_step",
    "#| cuda\n# the dry run's stand-in for a `cuda` cell: it runs only under `--flags cuda`\n"
    "r = time_step(lambda: torch.ones(64).sum(), warmup=1, repeats=2, device='cpu')\n"
    "assert r['median_ms'] >= 0\nopen('cuda_cell_ran.txt', 'w').write('ran')",
]

def toy_notebooks(folder) -> Path:
    "A folder with one small notebook that has a `cuda` cell: the dry run's stand-in for the book's."
    import nbformat
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.glob('*'): p.unlink()
    nb = nbformat.v4.new_notebook(); nb.cells = [nbformat.v4.new_code_cell(s) for s in TOY_NOTEBOOK]
    nbformat.write(nb, folder / 'toy_cuda.ipynb')
    return folder


def part_cells(work, dry, bound_s):
    folder = toy_notebooks(work / 'cells_dry') if dry else ROOT / 'nbs'
    nbs = cuda_notebooks(folder)
    run = {n: k for n, k in nbs.items() if n not in CELLS_SKIP}
    threads = max(1, (os.cpu_count() or 1) // max(len(run), 1))   # the notebooks run at once, sharing the cores
    env = child_env(LCR_EPOCHS='1', OMP_NUM_THREADS=str(threads))    # 08_report's CUB-size run: one epoch here
    (work / 'logs' / 'cells').mkdir(parents=True, exist_ok=True)
    argvs = {n: module('nbdev.test', '--path', folder / n, '--n_workers', '0', '--flags', 'cuda') for n in run}
    res = {}
    def one(n):
        res[n] = run_logged(argvs[n], work / 'logs' / 'cells' / f'{n}.log', bound_s, env, echo=False)
    ths = [threading.Thread(target=one, args=(n,)) for n in run]
    for t in ths: t.start()
    for t in ths: t.join()
    figs, rcs = [], []
    for n, (rc, s) in res.items():
        print(f"    {n}: {'passed' if rc == 0 else 'killed at the bound' if rc is None else 'FAILED'} in {s:.0f} s "
              f"({run[n]} cuda cells; log {rel(work / 'logs' / 'cells' / (n + '.log'))})", flush=True)
        figs.append(figure(f"{n} ({run[n]} cuda cells): {'passed' if rc == 0 else 'failed'}", s, 's', show(argvs[n])))
        rcs.append(rc)
    if dry and all(rc == 0 for rc in rcs) and not (folder / 'cuda_cell_ran.txt').exists():
        raise GpuChecksError("cells: the toy notebook's `cuda` cell did not run under --flags cuda")
    rc = None if None in rcs else max(rcs, default=0)
    notes = {'threads per notebook': threads, 'env': 'LCR_EPOCHS=1', 'left out': {n: CELLS_SKIP[n] for n in nbs if n in CELLS_SKIP}}
    return [show(a) for a in argvs.values()], figs, rc, notes


def part_study(work, dry, bound_s):
    from lcr.experiments import study_runs, collect
    out = work / 'study'
    minutes = max(0.1, round((bound_s - 45) / 60, 2))     # start no run in the last 45 s; the kill at the bound ends the rest
    args = DRY['study'] if dry else ['--budget', 'gpu', '--device', 'cuda', '--jobs', str(STUDY_JOBS)]
    argv = module('lcr.experiments', *args, '--out', out, '--max_minutes', str(minutes))
    rc, _ = run_logged(argv, work / 'logs' / 'study.log', bound_s, child_env())
    budget = args[args.index('--budget') + 1]
    names = tuple(args[args.index('--names') + 1].split(',')) if '--names' in args else None
    total, cmd = len(study_runs(budget, names=names)), show(argv)
    done = sum(len(v) for v in collect(out).values()) if out.exists() else 0
    figs = [figure('study runs finished', done, 'runs', cmd), figure('study runs in the budget', total, 'runs', cmd)]
    return [cmd], figs, rc, {'resume': f"{PROG} study (the same --work) goes on where this stopped" if done < total else 'complete'}


PARTS = dict(bench=part_bench, data=part_data, e2e=part_e2e, cells=part_cells, study=part_study)
assert tuple(PARTS) == GPU_PARTS


def git_state():
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True, timeout=30)
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT, capture_output=True,
                               text=True, timeout=30)
        if head.returncode: return None, None
        return head.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.TimeoutExpired): return None, None


def environment(dry, argv, minutes) -> dict:
    env = bench_environment('cpu' if dry else 'cuda')
    env['cudnn'] = None if dry else torch.backends.cudnn.version()
    env['commit'], env['dirty'] = git_state()
    env['gpu'] = None
    if not dry:
        try:
            smi = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
                                 capture_output=True, text=True, timeout=60)
            env['gpu'] = smi.stdout.strip() if smi.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired): pass
    return dict(env, command=shlex.join([PROG] + argv), minutes=minutes)


def parse(argv):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n')[0])
    ap.add_argument('parts', nargs='*', help=f"parts to run, in this order whatever the order given: {' '.join(GPU_PARTS)} (default: all)")
    ap.add_argument('--out', help='folder of the record (default: records/gpu, or the work folder with --dry-run)')
    ap.add_argument('--work', help='folder of the logs and outputs (default: runs/gpu_checks, runs/gpu_checks_dry with --dry-run)')
    ap.add_argument('--minutes', type=float, default=GPU_MINUTES, help='wall-time budget of this call (default %(default)s)')
    ap.add_argument('--dry-run', action='store_true', help='every part at toy sizes on the CPU; the record says so')
    a = ap.parse_args(argv)
    bad = [p for p in a.parts if p not in GPU_PARTS]
    if bad: ap.error(f"unknown part(s) {bad}: choose from {' '.join(GPU_PARTS)}")
    if not a.minutes > 0: ap.error(f"--minutes must be positive, got {a.minutes}")
    a.work = Path(a.work or ROOT / ('runs/gpu_checks_dry' if a.dry_run else 'runs/gpu_checks')).resolve()
    a.out = Path(a.out or (a.work if a.dry_run else RECORDS)).resolve()
    if a.dry_run and a.out == RECORDS.resolve():
        ap.error("a dry run's record never goes to records/gpu, which holds GPU measurements only: choose another --out")
    if a.out.exists() and not a.out.is_dir(): ap.error(f"--out {rel(a.out)} is a file, not a folder")
    return a


def budget_for(part, selected, left_s):
    "Seconds `part` may take: its bound, less the least time of the selected bounded parts after it (the study takes the rest)."
    names = list(GPU_PARTS)
    later = [p for p in GPU_PLAN[names.index(part) + 1:] if p['part'] in selected and p['bound_s'] is not None]
    b = left_s - sum(p['min_s'] for p in later)
    bound = GPU_PLAN[names.index(part)]['bound_s']
    return b if bound is None else min(bound, b)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse(argv)
    if not a.dry_run and not torch.cuda.is_available():
        sys.exit(f"{PROG}: error: CUDA is not available here; `{PROG} --dry-run` checks the script on the CPU")
    old = {sig: signal.signal(sig, stop_running) for sig in (signal.SIGTERM, signal.SIGINT)}
    try: return run_parts(a, argv)
    finally:
        for sig, h in old.items(): signal.signal(sig, h)


def run_parts(a, argv):
    "Run the selected parts of the parsed options `a` in the plan's order, writing the record after each; the exit status."
    t_start = time.monotonic()
    try: rec = read_gpu_record(a.out, dry_run=a.dry_run)      # a record already there is extended
    except ValueError as e: sys.exit(f"{PROG}: error: {e}")
    rec = rec or dict(record='lcr gpu checks', schema=1, dry_run=a.dry_run, calls=[], parts={})
    rec['calls'].append(environment(a.dry_run, argv, a.minutes))
    call = len(rec['calls']) - 1
    (a.work / 'logs').mkdir(parents=True, exist_ok=True)
    write_gpu_record(rec, a.out)
    selected = a.parts or list(GPU_PARTS)
    est = gpu_estimates()
    failed = []
    print(f"{PROG}{' (DRY RUN on the CPU, toy sizes)' if a.dry_run else ''}: {' '.join(p for p in GPU_PARTS if p in selected)}; "
          f"budget {a.minutes} min; record {rel(a.out)}, logs {rel(a.work / 'logs')}", flush=True)
    for spec in GPU_PLAN:
        p = spec['part']
        if p not in selected: continue
        left = a.minutes * 60 - (time.monotonic() - t_start)
        bound = budget_for(p, selected, left)
        entry = dict(call=call, estimate_s=est[p], bound_s=round(bound, 1), commands=[], figures=[])
        if bound < spec['min_s']:
            entry.update(status='not run', seconds=0.0, reason=f"{left:.0f} s left of the {a.minutes}-minute budget; "
                         f"it needs at least {spec['min_s']} s: run `{PROG} {p}` again")
            print(f"[{p}] not run: {entry['reason']}", flush=True)
            if p in rec['parts']:
                print(f"[{p}] the record keeps its entry from call {rec['parts'][p]['call'] + 1}", flush=True)
                continue
        else:
            e = 'no estimate (it takes what is left)' if est[p] is None else f"about {est[p]:.0f} s on one H100"
            print(f"[{p}] {spec['measures']}\n[{p}] estimate {e}; bound {bound:.0f} s", flush=True)
            t0 = time.monotonic()
            try:
                cmds, figs, rc, notes = PARTS[p](a.work, a.dry_run, bound)
                entry.update(commands=cmds, figures=figs, returncode=rc, notes=notes,
                             status='ok' if rc == 0 else 'timed out' if rc is None else 'failed')
            except (GpuChecksError, OSError, ValueError, KeyError) as err:
                entry.update(status='failed', reason=f"{type(err).__name__}: {err}")
            entry['seconds'] = round(time.monotonic() - t0, 1)
            print(f"[{p}] {entry['status']} in {entry['seconds']:.0f} s" + (f": {entry['reason']}" if 'reason' in entry else ''), flush=True)
        rec['parts'][p] = entry
        rec['calls'][call]['seconds'] = round(time.monotonic() - t_start, 1)
        write_gpu_record(rec, a.out)
        if entry['status'] == 'failed' or (entry['status'] == 'timed out' and p != 'study'): failed.append(p)
    print(f"{PROG}: {time.monotonic() - t_start:.0f} s; record {rel(a.out / 'gpu_checks.json')} and .md"
          + (f"; FAILED: {' '.join(failed)} (logs in {rel(a.work / 'logs')})" if failed else ''), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
