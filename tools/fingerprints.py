"""Fingerprints of tiny training runs, to show that a refactoring trains bit-identically.

Each run goes through the stable command line (`python -m lcr.train`, `python -m lcr.pretrain`) in a fresh temporary
folder; the output is one JSON object of sha256 prefixes: the parameters and the optimizer state of every checkpoint
and weights file, every record of `metrics.jsonl` with its time fields dropped, and the pixels of both image
generators. Run it against two trees and compare:

    PYTHONPATH=<old tree> python tools/fingerprints.py > before.json
    PYTHONPATH=<new tree> python tools/fingerprints.py > after.json && cmp before.json after.json

Options: `--only NAME[,NAME]` runs a subset (names as in the output), `--list` prints the names."""
import hashlib, importlib, importlib.util, json, os, subprocess, sys, tempfile
from pathlib import Path

import torch

TIME_FIELDS = {'time', 'images_per_s', 'train_s', 'peak_mem_bytes', 'seconds', 'elapsed_s', 'setup_s', 'steps_per_s',
               'projected_total_s', 'projected_remaining_s'}   # wall-clock, peak memory: they differ in any two runs
TINY_DATA = ['--backbone', 'tiny', '--weights', 'None', '--stem', 'small', '--synth_preset', 'small',
             '--n_images', '64',
             '--image_size', '32', '--batch_size', '32', '--epochs', '2', '--device', 'cpu', '--progress', 'none',
             '--log_every', '1']
TINY_KW = dict(queue_size=64, tiny_width=8, proj_dim=16)
PRE_TINY = ['--data_kw', '{"image_size": 32}', '--n_train', '64', '--n_test', '32', '--image_size', '32',
            '--batch_size', '16', '--epochs', '2', '--lr', '0.05', '--device', 'cpu', '--progress', 'none',
            '--log_every', '2']


def sha(b: bytes) -> str: return hashlib.sha256(b).hexdigest()[:16]


def tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous().reshape(-1)
    return f'{t.dtype}{tuple(t.shape)}'.encode() + t.view(torch.uint8).numpy().tobytes() if t.numel() else b'empty'


def canon(x) -> bytes:
    "A canonical byte string of nested dicts/lists of tensors and plain values."
    if isinstance(x, torch.Tensor): return tensor_bytes(x)
    if isinstance(x, dict):
        return b'{' + b','.join(repr(k).encode() + b':' + canon(x[k]) for k in sorted(x, key=repr)) + b'}'
    if isinstance(x, (list, tuple)): return b'[' + b','.join(canon(v) for v in x) + b']'
    return repr(x).encode()


def metrics(path: Path) -> list:
    if not path.is_file(): return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [{k: v for k, v in r.items() if k not in TIME_FIELDS} for r in recs]
    return [sha(json.dumps(r, sort_keys=True).encode()) for r in kept]


def checkpoint(path: Path) -> dict:
    d = torch.load(path, map_location='cpu', weights_only=True)
    out = {}
    for k in ('model', 'state_dict'):
        if k in d: out['params'] = sha(canon(d[k]))
    if 'optimizer' in d: out['optimizer'] = sha(canon(d['optimizer']))
    extra = {k: v for k, v in d.items() if k not in ('model', 'state_dict', 'optimizer', 'meta', 'train_config',
                                                        'model_config', 'identity', 'rng')}
    plain = {k: v for k, v in extra.items() if isinstance(v, (int, float, str)) and k not in TIME_FIELDS}
    out['counters'] = sha(canon(plain))
    return out


def folder(root: Path) -> dict:
    "Every .pt file and metrics.jsonl under `root`, by relative path (names that hold hashes of options kept)."
    res = {}
    for p in sorted(root.rglob('*')):
        rel = str(p.relative_to(root))
        if p.suffix == '.pt' and not p.name.startswith('.'): res[rel] = checkpoint(p)
        elif p.name == 'metrics.jsonl': res[rel] = metrics(p)
    return res


def run(module: str, args: list, cwd: Path) -> dict:
    r = subprocess.run([sys.executable, '-m', module, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       env={**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}, timeout=900)
    err = r.stderr.strip().splitlines()
    last = err[-1].replace(str(cwd), '<tmp>') if err and r.returncode else ''
    return dict(rc=r.returncode, error=last)


def train(cwd: Path, method: str, *extra, **kw) -> dict:
    r = run('lcr.train', ['--method', method, *TINY_DATA, '--method_kw', json.dumps({**TINY_KW, **kw}), '--out', 'run',
                          *extra], cwd)
    if r['rc']: raise SystemExit(f"fingerprints: lcr.train {method} failed: {r['error']}")
    return folder(cwd / 'run')


def pretrain(cwd: Path, *extra, expect_fail=False) -> dict:
    r = run('lcr.pretrain', [*PRE_TINY, '--out', 'pre', *extra], cwd)
    if bool(r['rc']) != expect_fail: raise SystemExit(f"fingerprints: lcr.pretrain {extra} gave {r}")
    return {**folder(cwd / 'pre'), **({'error': sha(r['error'].encode())} if expect_fail else {})}


def replay(cwd: Path) -> dict:
    "A finished MoCo v2 run, then three further steps of it at chosen rates (`replay_steps`, wherever the tree keeps it)."
    train(cwd, 'mocov2')
    mods = [importlib.import_module(f'lcr.{m}') for m in ('experiments', 'study', 'report')
            if importlib.util.find_spec(f'lcr.{m}') is not None]
    fn = next(getattr(m, 'replay_steps') for m in mods if hasattr(m, 'replay_steps'))
    return dict(losses=sha(repr(fn(cwd / 'run', [0.0, 0.03, 0.5])).encode()))


def images() -> dict:
    "The pixels (and masks) of both generators, from wherever the current tree keeps them."
    syn = importlib.import_module('lcr.synthetic')
    gen = syn if hasattr(syn, 'render_generic') else importlib.import_module('lcr.pretrain')
    from dataclasses import replace
    out, labels = {}, list(range(70))
    small, cub = syn.SYNTH_PRESETS['small'][0], syn.SYNTH_PRESETS['cub'][0]
    for name, cfg in (('small', small), ('cub_upsampled', replace(cub, image_size=(48, 64), render_size=24))):
        for split in ('train', 'test'):
            r = syn.render_synthetic(cfg, [i % cfg.n_classes for i in labels], split, with_masks=True)
            out[f'synthetic_{name}_{split}'] = sha(canon(r))
    for preset in gen.GENERIC_PRESETS:
        g = gen.GENERIC_PRESETS[preset][0]
        for split in ('train', 'test'):
            r = gen.render_generic(g, [i % g.n_classes for i in labels], split)
            out[f'generic_{preset}_{split}'] = sha(canon(r))
    return out


RUNS = {
    'images': lambda d: images(),
    'mocov2': lambda d: train(d, 'mocov2'),
    'lcr_paper': lambda d: train(d, 'lcr'),
    'lcr_reference': lambda d: train(d, 'lcr', '--preset', 'reference'),
    'byol': lambda d: train(d, 'byol'),
    'byol_lcr_knn_select': lambda d: train(d, 'byol_lcr', '--knn_every', '1', '--knn_k', '5', '--select_every', '1'),
    'supervised': lambda d: train(d, 'supervised', n_classes=20),
    'lcr_parts': lambda d: train(d, 'lcr', fit_target='parts'),
    'lcr_resumed': lambda d: (train(d, 'lcr', '--max_steps', '3'), train(d, 'lcr', '--resume', 'True'))[1],
    'lcr_time_limit': lambda d: train(d, 'lcr', '--max_minutes', '1e-9'),
    'byol_lcr_stop_epoch_end': lambda d: (train(d, 'byol_lcr', '--max_steps', '2', '--knn_every', '1', '--knn_k', '5'),
                                          train(d, 'byol_lcr', '--resume', 'True', '--knn_every', '1', '--knn_k', '5'))[1],
    'replay': replay,
    'pretrain_fresh': lambda d: pretrain(d),
    'pretrain_eval_every': lambda d: pretrain(d, '--eval_every', '1'),
    'pretrain_resumed': lambda d: (pretrain(d, '--max_steps', '5'), pretrain(d))[1],
    'pretrain_time_limit': lambda d: pretrain(d, '--max_minutes', '1e-9'),
    'pretrain_stop_epoch_end': lambda d: (pretrain(d, '--max_steps', '4', '--eval_every', '1'),
                                          pretrain(d, '--eval_every', '1'))[1],
    'pretrain_diverging': lambda d: pretrain(d, '--lr', '1e6', '--log_every', '1', expect_fail=True),
}


def main(argv):
    if '--list' in argv: print('\n'.join(RUNS)); return
    only = argv[argv.index('--only') + 1].split(',') if '--only' in argv else list(RUNS)
    unknown = [n for n in only if n not in RUNS]
    if unknown: raise SystemExit(f"fingerprints: unknown run(s) {unknown}; --list names them")
    torch.set_num_threads(1)
    res = {}
    for name in only:
        with tempfile.TemporaryDirectory() as d:
            res[name] = RUNS[name](Path(d))
        print(f'{name} done', file=sys.stderr, flush=True)
    print(json.dumps(res, indent=1, sort_keys=True))


if __name__ == '__main__': main(sys.argv[1:])
