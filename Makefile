# Set-up, tests and docs. `make test` works on a fresh machine: it creates .venv if missing and installs the
# package with its pinned dev dependencies from this repository's files before running the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lcr-installed
PYTEST_ARGS ?=

.PHONY: install demo pretrain demo-pretrained test test-quick docs readme export check
DEMO_ARGS ?=

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) settings.ini setup.py constraints.txt
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job: MoCo v2 and LCR trained on the embedded data set from the pretrained start the repository ships
## (weights/), evaluated, reported (minutes on a CPU); DEMO_ARGS="--start random" trains from a random start
demo: $(STAMP)
	$(VENV)/bin/lcr_demo $(DEMO_ARGS)

## The pretrained start of chapter 10 (PRETRAIN_CPU: about a quarter of an hour on two cores, once), cached in runs/pretrained
pretrain: $(STAMP)
	$(PY) -c "from lcr.experiments import prepare_start; print(prepare_start('cpu-pretrained', progress='print'))"

## MoCo v2 and LCR at the `paper` preset (chapter 10a's knobs) as chapter 10's study runs them (test-set selection
## logged beside), from the shipped start, seed 0
demo-pretrained: $(STAMP)
	$(VENV)/bin/lcr_experiments --budget cpu-pretrained --names mocov2,lcr-nu0.3-tau0.4 --seeds 0 --out runs/demo_pretrained \
		--pretrained_out weights

## Every notebook top to bottom through nbdev_test, `slow` cells included (and `cuda` ones where a GPU is present),
## one pytest test each, the static reading-order check and the end-to-end tests in tests/
test: $(STAMP)
	LCR_TEST_FLAGS="slow$$($(PY) -c 'import torch; print(" cuda" if torch.cuda.is_available() else "")')" $(PY) -m pytest tests $(PYTEST_ARGS)

## The same without the `slow` cells: a quicker check while editing
test-quick: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

## The book as a static HTML site in _docs/, offline
docs: $(STAMP)
	$(PY) tools/build_docs.py --out _docs

## README.md from nbs/index.ipynb
readme: $(STAMP)
	$(PY) tools/make_readme.py

## Notebooks -> library, then strip notebook metadata
export: $(STAMP)
	$(VENV)/bin/nbdev_export
	$(VENV)/bin/nbdev_clean
	$(PY) tools/scrub_outputs.py

## The whole check after editing a notebook: export and clean, README from the front page, then every test
check: export readme test
