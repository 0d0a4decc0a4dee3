"""`clipdesk classify` on a tiny model: files and folders from disk, scores as the pipeline defines them."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from clipdesk.cli import main as run_cli
from clipdesk.runtime.encoders import ClipModel
from clipdesk.runtime.package import load_package, write_manifest
from clipdesk.tagging.calibration import Calibration
from clipdesk.tagging.classify import find_photo_files
from clipdesk.tagging.prompts import background_embedding, ensemble_embeddings
from clipdesk.tagging.templates import PAPER_SUBSET


@pytest.fixture
def pictures(tmp_path):
    root = tmp_path / "pictures"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for name, colour in (("red.jpg", (230, 20, 20)), ("sub/green.png", (20, 230, 20)),
                         ("sub/Blue sky é.webp", (20, 20, 230)), (".hidden/skip.jpg", (0, 0, 0)), (".dot.jpg", (0, 0, 0))):
        Image.new("RGB", (50, 40), colour).save(root / name)
    (root / "notes.txt").write_text("not a photo")
    return root


def test_folders_are_searched_for_photos_hidden_names_skipped(pictures):
    found = [os.path.relpath(path, pictures) for path in find_photo_files([str(pictures)])]
    assert found == ["red.jpg", "sub/Blue sky é.webp", "sub/green.png"]
    named = find_photo_files([str(pictures / "notes.txt"), str(pictures / "red.jpg"), str(pictures)])
    assert named[0].endswith("notes.txt") and len(named) == 4  # a file given by name is always tried


def test_scores_are_the_open_set_softmax_of_the_ensemble(pictures, tiny_model_package, capsys):
    labels = ["red", "green", "blue"]
    assert run_cli(["classify", str(pictures), "--labels", ",".join(labels), "--template", "ensemble-7",
                    "--model", str(tiny_model_package), "--json", "--device", "cpu"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [os.path.basename(r["path"]) for r in results] == ["red.jpg", "Blue sky é.webp", "green.png"]
    model = ClipModel(load_package(tiny_model_package), device="cpu")
    text = ensemble_embeddings(model.text, labels, PAPER_SUBSET)
    background = background_embedding(model.text, PAPER_SUBSET)
    temperature = Calibration.for_model(model.package).temperature
    for result in results:
        image = model.image.encode_images([Image.open(result["path"]).convert("RGB")])[0]
        logits = temperature * np.append(text @ image, background @ image)
        expected = np.exp(logits - logits.max())
        expected /= expected.sum()
        got = {item["label"]: item["score"] for item in result["labels"]}
        np.testing.assert_allclose([got[label] for label in labels], expected[:3], atol=2e-3)
        assert result["none"] == pytest.approx(expected[3], abs=2e-3)
        scores = [item["score"] for item in result["labels"]]
        assert scores == sorted(scores, reverse=True)


def test_top_k_closed_set_text_output_and_bad_files(pictures, tiny_model_package, capsys, tmp_path):
    (pictures / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("red\ngreen\nblue\n")
    code = run_cli(["classify", str(pictures), "--labels", str(labels_file), "--top-k", "2", "--closed-set",
                    "--model", str(tiny_model_package), "--json"])
    captured = capsys.readouterr()
    assert code == 1 and "broken.jpg" in captured.err  # reported, the others still classified
    results = json.loads(captured.out)
    assert len(results) == 3 and all(len(r["labels"]) == 2 and "none" not in r for r in results)
    assert run_cli(["classify", str(pictures / "red.jpg"), "--labels", "red,green", "--model",
                    str(tiny_model_package)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(pictures / "red.jpg") + "\t") and ("red" in line and "green" in line)
    assert run_cli(["classify", str(pictures / "missing.jpg"), "--labels", "a", "--model",
                    str(tiny_model_package)]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_without_a_template_the_models_own_templates_are_used(pictures, tiny_model_package, capsys, tmp_path):
    own = ["an emoji of a {}.", "{}"]
    package = tmp_path / "with-templates"
    shutil.copytree(tiny_model_package, package)
    manifest = load_package(package).manifest
    manifest.templates = own
    write_manifest(package, manifest)

    def scores(model, *templates):
        options = [option for template in templates for option in ("--template", template)]
        assert run_cli(["classify", str(pictures), "--labels", "red,green,blue", "--model", str(model), "--json",
                        *options]) == 0
        return [{item["label"]: item["score"] for item in row["labels"]} for row in json.loads(capsys.readouterr().out)]

    assert scores(package) == scores(package, *own) == scores(tiny_model_package, *own)
    assert scores(package) != scores(package, "default")
    assert scores(tiny_model_package) == scores(tiny_model_package, "default")  # a model naming none
