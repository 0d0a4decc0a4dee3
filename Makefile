PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL_LICENSE := CC-BY-SA-4.0 (weights; trained on the sets in ATTRIBUTION.md)
MODEL_DESCRIPTION := clipdesk's own small CLIP, trained from scratch on open emoji and icon sets. It knows emoji, icons and clip-art; it was never shown a photograph, so for photos import a real CLIP model.

.PHONY: venv run test test-dist dist data model sample-library eval-styles clean

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
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -n 2 -m "not slow" tests

# Builds the app bundle into a temporary folder and runs the frozen clipdesk with no Python environment:
# index and search a library, model import, the window (docs/packaging.md). A few minutes.
test-dist: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m slow tests/test_dist.py

# The desktop app: dist/clipdesk/ (one-folder PyInstaller bundle of the run side, no torch) and its archive,
# built from its own runtime-only environment in build/dist-venv, with resources/ as it is (docs/packaging.md).
dist:
	$(PYTHON) packaging/build_dist.py

# The default model's training data: pinned npm packages → licence filter → PNG renders + JSONL
# manifests in data/emoji-icons (git-ignored). Needs npm. About 22 min on 2 cores the first time.
data: venv
	$(BIN)/python -m clipdesk.data.build_dataset --out data/emoji-icons --cache data/cache \
		--attribution-copy resources/data-licences/emoji-icons-ATTRIBUTION.md

# clipdesk's default model from scratch: train two epochs on the emoji and icon data (about 35 min on
# 2 idle cores; resumes an interrupted run), export with fp16 weights into resources/models/, make it the default,
# then print its zero-shot figures on the validation split and on the held-out concepts.
MODEL := clipdesk-emoji-tiny
RUN := data/runs/emoji-tiny-mix
model: data
	$(BIN)/python -m clipdesk.data.sample_rows data/emoji-icons/val.jsonl data/emoji-icons/val-2k.jsonl --rows 2000
	$(BIN)/python -m clipdesk.data.training_mix data/emoji-icons/train.jsonl data/emoji-icons/train-mix.jsonl
	if [ -d $(RUN)/checkpoints ]; then $(BIN)/python -m clipdesk.train --out $(RUN) --resume; else \
	$(BIN)/python -m clipdesk.train --data data/emoji-icons/train-mix.jsonl --val-data data/emoji-icons/val-2k.jsonl \
		--model tiny --epochs 4 --batch-size 256 --lr 1e-3 --out $(RUN) --name $(MODEL); fi
	rm -rf build/$(MODEL)
	$(BIN)/clipdesk model export $(RUN)/model.safetensors build/$(MODEL) --name $(MODEL) --precision fp16 \
		--license "$(MODEL_LICENSE)" --description "$(MODEL_DESCRIPTION)"
	mkdir -p resources/models/$(MODEL)
	cp build/$(MODEL)/* resources/models/$(MODEL)/
	cp resources/data-licences/emoji-icons-ATTRIBUTION.md resources/models/$(MODEL)/ATTRIBUTION.md
	echo $(MODEL) > resources/models/DEFAULT
	$(BIN)/python benchmarks/zero_shot_eval.py --model resources/models/$(MODEL) --manifest data/emoji-icons/val-2k.jsonl
	$(BIN)/python benchmarks/zero_shot_eval.py --model resources/models/$(MODEL) --manifest data/emoji-icons/heldout.jsonl --kind emoji
	$(BIN)/python benchmarks/zero_shot_eval.py --model resources/models/$(MODEL) --manifest data/emoji-icons/heldout.jsonl --kind icon
	$(MAKE) eval-styles
	$(BIN)/python benchmarks/zero_shot_eval.py --model resources/models/$(MODEL) --manifest data/eval-styles/unseen.jsonl \
		--label-space data/emoji-icons/emoji-concepts.tsv --report data/eval-styles/reports/$(MODEL).json

# Emoji art styles the default model never saw (Apple, Facebook): evaluation only, never trained on or shipped.
eval-styles: venv
	$(BIN)/python -m clipdesk.data.unseen_styles --out data/eval-styles --cache data/cache

# resources/sample-library: 72 emoji and icons from the validation split (never trained on), credited.
sample-library: data
	$(BIN)/python -m clipdesk.data.sample_library --dataset data/emoji-icons --cache data/cache

clean:
	rm -rf $(VENV) build dist *.egg-info
