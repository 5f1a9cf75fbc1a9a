import os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
BIN = Path(sys.executable).parent


def notebooks():
    return sorted(NBS.glob('*.ipynb'))


def extra_flags():
    "Extra nbdev test flags to run (e.g. 'slow cuda'), from the LCR_TEST_FLAGS environment variable."
    return os.environ.get('LCR_TEST_FLAGS', '').strip()
