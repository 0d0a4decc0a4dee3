PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test data sample-library clean

# Recreated or updated only when the project's requirements change.
venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev,heic]'
	touch $(STAMP)

run: venv
	$(BIN)/clipdesk

test: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -n 2 tests

# The default model's training data: pinned npm packages → licence filter → PNG renders + JSONL
# manifests in data/emoji-icons (git-ignored). Needs npm. About 22 min on 2 cores the first time.
data: venv
	$(BIN)/python -m clipdesk.data.build_dataset --out data/emoji-icons --cache data/cache \
		--attribution-copy resources/data-licences/emoji-icons-ATTRIBUTION.md

# resources/sample-library: 72 emoji and icons from the validation split (never trained on), credited.
sample-library: data
	$(BIN)/python -m clipdesk.data.sample_library --dataset data/emoji-icons --cache data/cache

clean:
	rm -rf $(VENV) build *.egg-info
