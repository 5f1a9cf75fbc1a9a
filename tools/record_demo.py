"""Run `make demo`'s command once, timed, and write `records/demo.json`: the command, its wall-clock seconds from the
command to the report, the threads, torch and CPU it ran on, the commit, and the report's rows (without folders).

    OMP_NUM_THREADS=2 python tools/record_demo.py [--out runs/demo_record] [--note "what else ran on the machine"]

Chapter 8a renders the record instead of training the demo inside `make test`; the demo itself stays `make demo`."""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default='runs/demo_record', help="the demo's folder (made afresh)")
    ap.add_argument('--note', default='', help='what else ran on the machine meanwhile, if anything')
    a = ap.parse_args()
    import torch
    from lcr.experiments import library_commit
    out = ROOT / a.out
    if out.exists(): shutil.rmtree(out)
    cmd = [str(Path(sys.executable).parent / 'lcr_demo'), '--out', a.out, '--progress', 'none']
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.time() - t0
    if r.returncode: sys.exit(f"record_demo: the demo failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    rows = json.loads((out / 'report.json').read_text())
    keep = ('method', 'preset', 'backbone', 'stem', 'dataset', 'epochs', 'global_step', 'seed', 'image_size',
            'n_train', 'n_test', 'retrieval', 'knn_top1', 'probe', 'linear_probe')
    rec = dict(format='lcr-demo-v1', command='make demo', seconds=round(seconds, 1),
               title=(out / 'report.md').read_text().splitlines()[0].lstrip('# ').strip(),
               torch=torch.__version__.split('+')[0], torch_threads=int(os.environ.get('OMP_NUM_THREADS', '0')) or None,
               cpu_count=os.cpu_count(), cpu_capability=torch.backends.cpu.get_cpu_capability(),
               commit=library_commit(), note=a.note,
               report=[dict(run=Path(x['run']).name, **{k: x[k] for k in keep if k in x}) for x in rows])
    (ROOT / 'records' / 'demo.json').write_text(json.dumps(rec, indent=1) + '\n')
    print(f"wrote records/demo.json: {seconds:.0f} s")


if __name__ == '__main__':
    main()
