# The two commands of the README: `make run` (set up + dummy_audio end to end) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data

.PHONY: install run test dummy-data bench clean-data backends pipeline pipeline-rec pretrained onnx browser

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(MAKE) pretrained
	touch $(STAMP)

install: $(STAMP)

dummy-data: install
	$(BIN)/tartarus dummy-data --data-dir $(DATA)

# dummy data -> spectrograms -> patches -> train, predict and evaluate dummy_audio
run: dummy-data
	$(BIN)/tartarus spectrograms DUMMY --data-dir $(DATA)
	$(BIN)/tartarus patches DUMMY --data-dir $(DATA)
	$(BIN)/tartarus run dummy_audio --data-dir $(DATA)

# the seed's dummy chain: audio, text and fused models, compared in one table
pipeline: install
	$(BIN)/tartarus pipeline dummy --data-dir $(DATA)

# cold-start recommendation on the dummy data: ALS factors, audio / text / fused models, baselines
pipeline-rec: install
	$(BIN)/tartarus pipeline dummy-rec --data-dir $(DATA)

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: install
	$(BIN)/python benchmarks/bench_preprocessing.py
	$(BIN)/python benchmarks/bench_training_feed.py
	$(BIN)/python benchmarks/bench_recommendation.py

clean-data:
	rm -rf $(DATA)/index $(DATA)/audio $(DATA)/text $(DATA)/splits $(DATA)/spectrograms $(DATA)/patches \
	       $(DATA)/train_data $(DATA)/models $(DATA)/predictions $(DATA)/results

# the released musicnn / VGG tagger weights (tartarus.pretrained): only the wheel's checkpoint files are read,
# so it goes in without its declared dependencies (numpy<1.17 and TensorFlow 1 pins that no longer install)
pretrained:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-deps musicnn==0.1.0

# optional: ONNX export (tartarus export --format onnx) on TensorFlow (tf2onnx, onnx) and its check (onnxruntime);
# none of them changes numpy, TensorFlow or Keras
onnx: install
	$(BIN)/python -m pip install -q -e '.[test,onnx]'

# optional: headless Chromium and its driver (Debian's packages), so that tests/test_browser.py opens pages
# in a real browser; root installs with apt-get, anyone else through sudo
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	    echo "browser: $$(command -v chromium) and $$(command -v chromedriver) are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	elif command -v sudo >/dev/null; then \
	    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else \
	    echo "browser: cannot install chromium and chromium-driver: not root and no sudo;" \
	         "ask an administrator to run: apt-get install chromium chromium-driver" >&2; \
	    exit 1; \
	fi

# optional: the other Keras backends, so that tests/test_backends.py runs them too
# (torch 2.13.0 is a CPU wheel already on these machines; never the registry's CUDA build)
backends: install
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q "jax[cpu]>=0.4.30"
