"""Every notebook of the book runs as a test: `nbdev_test`, one pytest test per notebook.

Cells flagged `#| slow` or `#| cuda` run when LCR_TEST_FLAGS names them: `make test` sets `slow` (and `cuda` where a GPU is
present), `make test-quick` neither."""
import subprocess, sys
import pytest
from conftest import BIN, ROOT, notebooks, extra_flags


@pytest.mark.parametrize('nb', notebooks(), ids=lambda p: p.name)
def test_notebook(nb):
    cmd = [str(BIN / 'nbdev_test'), '--path', str(nb), '--n_workers', '0']
    if extra_flags(): cmd += ["--flags", extra_flags()]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and 'Success' in r.stdout, f"{nb.name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-8000:]}"
