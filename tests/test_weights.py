"""The pretrained tiny backbone the repository ships (`weights/`, described by `records/pretrained_weights.json`): the
file is the one the record hashes, it is the weights file the `cpu-pretrained` budget asks for, and the pretraining that
made it replays: the first logged line of `lcr_pretrain` from the recorded seed and threads is reproduced bit for bit.
The whole pretraining (a quarter of an hour on two cores) stays a documented command, not a test."""
import hashlib, json, os, subprocess, sys
import pytest, torch
from conftest import ROOT

REC = json.loads((ROOT / 'records' / 'pretrained_weights.json').read_text())
FILE = ROOT / REC['file']


def test_file_matches_the_record():
    data = FILE.read_bytes()
    assert len(data) == REC['bytes'] and hashlib.sha256(data).hexdigest() == REC['sha256'], \
        f"{REC['file']} is not the file records/pretrained_weights.json describes"
    assert len(data) < 2 ** 21                                        # about a megabyte: fit for the repository


def test_it_is_the_budgets_start():
    from lcr.experiments import start_weights
    from lcr.pretrain import verify_weights
    assert os.path.samefile(start_weights(REC['budget'], ROOT / 'weights'), FILE)   # the name the budget's pretraining has
    meta = verify_weights(FILE)                                           # the tensors match the digest written with them
    assert meta['config'] == REC['train_config'] and meta['name'] == FILE.stem


def same_machine():
    "Bitwise float results need the threads, the torch release and the CPU's vector unit of the recording."
    return (torch.__version__.split('+')[0], torch.backends.cpu.get_cpu_capability()) == (REC['torch'], REC['cpu_capability'])


def test_first_steps_replay(tmp_path):
    if not same_machine():
        pytest.skip(f"bit-for-bit replay needs torch {REC['torch']} on a {REC['cpu_capability']} CPU (recorded); this is torch "
                    f"{torch.__version__} on {torch.backends.cpu.get_cpu_capability()}")
    first = REC['first_log']
    env = dict(os.environ, OMP_NUM_THREADS=str(REC['torch_threads']))
    cmd = [sys.executable, '-m', 'lcr.pretrain', '--epochs', str(REC['pretrain']['epochs']), '--out', str(tmp_path),
           '--max_steps', str(first['global_step']), '--device', 'cpu', '--progress', 'none']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    log = (tmp_path / FILE.stem / 'metrics.jsonl').read_text().splitlines()
    got = json.loads(log[0]); got.pop('time')
    assert got == first, f"the replayed first line {got} is not the recorded {first}"
