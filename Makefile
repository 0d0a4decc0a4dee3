PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL_LICENSE := CC-BY-SA-4.0 (weights; trained on the sets in ATTRIBUTION.md)
MODEL_DESCRIPTION := clipdesk's own small CLIP, trained from scratch on open emoji and icon sets. It knows emoji, icons and clip-art; it was never shown a photograph, so for photos import a real CLIP model.

.PHONY: venv run test test-gpu test-dist dist data model sample-library eval-styles clean

# Recreated or updated only when the project's requirements change.
venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

run: venv
	$(BIN)/clipdesk

# The tests that need a CUDA GPU run apart (make test-gpu), so that the suite reports no skips anywhere.
test: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -n 2 -m "not slow and not gpu" tests

test-gpu: venv
	$(BIN)/python -m pytest -q -m gpu tests

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

# clipdesk's default model from scratch on 2 CPU cores, in five stages (about 5 h on idle cores): 4 epochs
# of the emoji-weighted multilingual mix from random weights (lr 1e-3), then three times 3 epochs
# warm-restarted from the previous stage's weights (lr 5e-4, 3e-4, 2e-4), each on a new mix with other
# icons and Japanese and Chinese twice, then one epoch at a 4x larger contrastive batch (1,024, in chunks
# of 256 by gradient caching; lr 2.5e-4) on a mix with Chinese three times. A stage resumes where it was
# interrupted and is skipped once complete. Then the fp16 export, with the prompt templates the model is
# measured best with (MODEL_TEMPLATES) and its lexicon (WordNet likenesses and definitions of the English
# words its training captions never held, runtime/lexicon.py), into resources/models/ as the default, and
# its figures, and the tagging calibration fitted on held-out images (docs/tagging.md).
MODEL := clipdesk-emoji-tiny
RUN := data/runs/emoji-tiny-mix
RUN2 := data/runs/emoji-tiny-mix2
RUN3 := data/runs/emoji-tiny-mix3
RUN4 := data/runs/emoji-tiny-mix4
RUN5 := data/runs/emoji-tiny-mix5-b1024
MODEL_TEMPLATES := --template "{}"
# Every stage's training mix: the words the model read, which its lexicon does not look up.
MIXES := train-mix.jsonl train-mix-2.jsonl train-mix-3.jsonl train-mix-4.jsonl train-mix-5.jsonl
# A stage's own options come last, so they override these (stage 5's --batch-size).
TRAIN_STAGE = if [ -f $(1)/summary.json ]; then echo "$(1): complete"; \
	elif [ -d $(1)/checkpoints ]; then $(BIN)/python -m clipdesk.train --out $(1) --resume; \
	else $(BIN)/python -m clipdesk.train --out $(1) --name $(MODEL) --batch-size 256 \
		--val-data data/emoji-icons/val-2k.jsonl $(2); fi
model: data
	$(BIN)/python -m clipdesk.data.sample_rows data/emoji-icons/val.jsonl data/emoji-icons/val-2k.jsonl --rows 2000
	$(BIN)/python -m clipdesk.data.training_mix data/emoji-icons/train.jsonl data/emoji-icons/train-mix.jsonl
	$(BIN)/python -m clipdesk.data.training_mix data/emoji-icons/train.jsonl data/emoji-icons/train-mix-2.jsonl \
		--seed 1 --language-repeats ja=2,zh=2
	$(BIN)/python -m clipdesk.data.training_mix data/emoji-icons/train.jsonl data/emoji-icons/train-mix-3.jsonl \
		--seed 2 --language-repeats ja=2,zh=2
	$(BIN)/python -m clipdesk.data.training_mix data/emoji-icons/train.jsonl data/emoji-icons/train-mix-4.jsonl \
		--seed 3 --language-repeats ja=2,zh=2
	$(BIN)/python -m clipdesk.data.training_mix data/emoji-icons/train.jsonl data/emoji-icons/train-mix-5.jsonl \
		--seed 7 --language-repeats ja=2,zh=3 --icon-rows 150000
	$(call TRAIN_STAGE,$(RUN),--data data/emoji-icons/train-mix.jsonl --model tiny --epochs 4 --lr 1e-3)
	$(call TRAIN_STAGE,$(RUN2),--data data/emoji-icons/train-mix-2.jsonl --init $(RUN)/model.safetensors --epochs 3 --lr 5e-4)
	$(call TRAIN_STAGE,$(RUN3),--data data/emoji-icons/train-mix-3.jsonl --init $(RUN2)/model.safetensors --epochs 3 --lr 3e-4)
	$(call TRAIN_STAGE,$(RUN4),--data data/emoji-icons/train-mix-4.jsonl --init $(RUN3)/model.safetensors --epochs 3 --lr 2e-4)
	$(call TRAIN_STAGE,$(RUN5),--data data/emoji-icons/train-mix-5.jsonl --init $(RUN4)/model.safetensors --epochs 1 --lr 2.5e-4 \
		--batch-size 1024 --chunk-size 256 --seed 8)
	$(BIN)/python -m clipdesk.data.lexicon --out build/$(MODEL)-lexicon.json --cache data/cache \
		--captions $(foreach mix,$(MIXES),data/emoji-icons/$(mix))
	rm -rf build/$(MODEL)
	$(BIN)/clipdesk model export $(RUN5)/model.safetensors build/$(MODEL) --name $(MODEL) --precision fp16 \
		--license "$(MODEL_LICENSE)" --description "$(MODEL_DESCRIPTION)" $(MODEL_TEMPLATES) \
		--lexicon build/$(MODEL)-lexicon.json
	mkdir -p resources/models/$(MODEL)
	cp build/$(MODEL)/* resources/models/$(MODEL)/
	cp resources/data-licences/emoji-icons-ATTRIBUTION.md resources/models/$(MODEL)/ATTRIBUTION.md
	cp resources/data-licences/wordnet-LICENSE.txt resources/models/$(MODEL)/WORDNET-LICENSE.txt
	echo $(MODEL) > resources/models/DEFAULT
	$(BIN)/python benchmarks/zero_shot_eval.py --model resources/models/$(MODEL) --manifest data/emoji-icons/val-2k.jsonl
	$(BIN)/python benchmarks/zero_shot_eval.py --model resources/models/$(MODEL) --manifest data/emoji-icons/heldout.jsonl --kind emoji
	$(BIN)/python benchmarks/zero_shot_eval.py --model resources/models/$(MODEL) --manifest data/emoji-icons/heldout.jsonl --kind icon
	$(MAKE) eval-styles
	$(BIN)/python benchmarks/zero_shot_eval.py --model resources/models/$(MODEL) --manifest data/eval-styles/unseen.jsonl \
		--label-space data/emoji-icons/emoji-concepts.tsv --report data/eval-styles/reports/$(MODEL).json
	$(BIN)/python benchmarks/tagging_calibration.py --model resources/models/$(MODEL) --write \
		--plot docs/tagging-calibration-$(MODEL).png

# Emoji art styles the default model never saw (Apple, Facebook): evaluation only, never trained on or shipped.
eval-styles: venv
	$(BIN)/python -m clipdesk.data.unseen_styles --out data/eval-styles --cache data/cache

# resources/sample-library: 72 emoji and icons from the validation split (never trained on), credited.
sample-library: data
	$(BIN)/python -m clipdesk.data.sample_library --dataset data/emoji-icons --cache data/cache

clean:
	rm -rf $(VENV) build dist *.egg-info
