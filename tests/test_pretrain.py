"""The pretraining command end to end: `python -m lcr.pretrain` (the `lcr_pretrain` console script once settings.ini
declares it) writes a weights file that `lcr_train --weights` starts from, and finds it cached the second time."""
import subprocess, sys
from conftest import ROOT, BIN

TINY = ['--data_kw', '{"image_size": 32}', '--n_train', '64', '--n_test', '32', '--image_size', '32', '--batch_size', '16',
        '--epochs', '1', '--device', 'cpu', '--progress', 'none']


def pretrain(*args):
    script = BIN / 'lcr_pretrain'
    cmd = [str(script)] if script.exists() else [sys.executable, '-m', 'lcr.pretrain']
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_help_documents_every_option():
    r = pretrain('--help')
    assert r.returncode == 0, r.stderr
    for o in ('--backbone', '--stem', '--data', '--data_kw', '--n_train', '--epochs', '--out', '--max_steps', '--max_minutes',
              '--eval_every', '--min_scale'):
        assert o in r.stdout, o


def test_bad_option_fails_before_any_work(tmp_path):
    r = pretrain('--backbone', 'vgg', '--out', tmp_path / 'w')
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith("lcr_pretrain: error: `backbone` must be one of")
    assert not (tmp_path / 'w').exists()


def test_weights_start_lcr_train(tmp_path):
    r = pretrain(*TINY, '--out', tmp_path / 'pretrained')
    assert r.returncode == 0, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith('weights: ') and 'held-out top-1' in last, last
    path = last[len('weights: '):].split(' (')[0]
    assert path.startswith(str(tmp_path / 'pretrained')) and path.endswith('.pt')
    again = pretrain(*TINY, '--out', tmp_path / 'pretrained', '--log_every', '7')       # cached: the same file, no training
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == last
    t = subprocess.run([sys.executable, '-m', 'lcr.train', '--method', 'mocov2', '--backbone', 'tiny', '--weights', path,
                        '--stem', 'small', '--synth_preset', 'small', '--n_images', '64', '--image_size', '32',
                        '--batch_size', '32', '--epochs', '1', '--method_kw', '{"queue_size": 64}', '--device', 'cpu',
                        '--progress', 'none', '--out', str(tmp_path / 'moco')], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert t.returncode == 0, t.stdout + t.stderr
    import torch
    ck = torch.load(tmp_path / 'moco' / 'checkpoint.pt', weights_only=True)
    assert ck['train_config']['weights'] == path and ck['model_config']['weights'] == path
