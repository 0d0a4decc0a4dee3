"""Label sets in the library, and running them: suggestions, user tags kept, open set, few-shot, CLI."""

import json

import numpy as np
import pytest

from clipdesk.cli import main as run_cli
from clipdesk.errors import ClipdeskError, EmptyLibraryError
from clipdesk.library.store import Library
from clipdesk.tagging.label_sets import create_label_set, delete_label_set, edit_label_set, get_label_set, label_sets
from clipdesk.tagging.prompts import background_embedding
from clipdesk.tagging.suggest import run_label_set
from clipdesk.tagging.tags import add_tags, reject_suggestions, suggestions, tags_of_photos
from clipdesk.tagging.templates import PAPER_ENSEMBLE
from test_tagging_support import label_vectors, photos  # noqa: F401

LABELS = ["red", "green", "blue"]


def test_label_sets_persist_with_their_templates(clipdesk_home):
    with Library() as library:
        create_label_set(library, "Colours", ["red", "Green", "green", " blue "])
        create_label_set(library, "scenes", ["beach", "forest"], ["ensemble", "a snapshot of {}"])
    with Library() as library:  # reopened: stored in the database
        colours = get_label_set(library, "colours")
        assert (colours.name, colours.labels, colours.templates) == ("Colours", ("red", "Green", "blue"),
                                                                    ("model",))  # the model's own
        assert get_label_set(library, "SCENES").templates == (*PAPER_ENSEMBLE, "a snapshot of {}")
        assert [item.name for item in label_sets(library)] == ["Colours", "scenes"]
        with pytest.raises(ClipdeskError, match="exists"):
            create_label_set(library, "colours", ["x"])
        assert create_label_set(library, "colours", ["x"], replace=True).labels == ("x",)
        edited = edit_label_set(library, "colours", templates=["itap of a {}."])
        assert (edited.labels, edited.templates) == (("x",), ("itap of a {}.",))
        delete_label_set(library, "colours")
        with pytest.raises(ClipdeskError, match="no label set 'colours' \\(label sets: scenes\\)"):
            get_label_set(library, "colours")
        for bad in ([], ["a|b"]):
            with pytest.raises(ClipdeskError):
                create_label_set(library, "bad", bad)


def test_a_run_suggests_each_photos_label_and_none_where_nothing_fits(library, model, photos):
    vectors = label_vectors(model, LABELS)
    noise = np.random.default_rng(0).standard_normal((6, vectors.shape[1])) * 0.02
    for i, label in enumerate(LABELS * 2):
        photos.add(f"{label}{i}.jpg", vectors[i % 3] + noise[i])
    photos.add("nothing.jpg", background_embedding(model.text, ["a photo of a {}."]))
    photos.add("not-embedded.jpg")
    create_label_set(library, "colours", LABELS)
    run = run_label_set(library, "colours", model)
    assert (run.photos, run.suggested, run.none, run.decided) == (7, 6, 1, 0)
    by_path = {outcome.path.rsplit("/", 1)[1]: outcome for outcome in run.outcomes}
    for i, label in enumerate(LABELS * 2):
        assert by_path[f"{label}{i}.jpg"].label == label and by_path[f"{label}{i}.jpg"].status == "suggested"
    assert by_path["nothing.jpg"].label is None and by_path["nothing.jpg"].status == "none"
    grouped = suggestions(library, LABELS)
    assert sorted(grouped) == sorted(LABELS) and all(len(items) == 2 for items in grouped.values())
    confidences = [s.confidence for items in grouped.values() for s in items]
    assert all(0 < c <= 1 for c in confidences)
    # running again replaces the suggestions instead of piling them up
    run_label_set(library, "colours", model)
    assert sum(len(items) for items in suggestions(library, LABELS).values()) == 6


def test_user_tags_are_never_overwritten_and_rejections_stick(library, model, photos):
    vectors = label_vectors(model, LABELS)
    red = photos.add("red.jpg", vectors[0])
    green = photos.add("green.jpg", vectors[1])
    blue = photos.add("blue.jpg", vectors[2])
    create_label_set(library, "colours", LABELS)
    add_tags(library, [red], ["blue"])  # the user says otherwise: that stays, and no suggestion is made
    reject_suggestions(library, [green], "green")  # nothing to reject yet: ignored
    run_label_set(library, "colours", model)
    reject_suggestions(library, [green], "green")
    run = run_label_set(library, "colours", model, apply_above=0.01)
    statuses = {outcome.photo_id: outcome.status for outcome in run.outcomes}
    assert statuses == {red: "decided", green: "rejected", blue: "applied"}
    decided = next(outcome for outcome in run.outcomes if outcome.photo_id == red)
    assert decided.label == "blue"  # the user's label, with the model's confidence in it
    assert decided.confidence == pytest.approx(dict(decided.ranked)["blue"])
    tags = tags_of_photos(library, [red, green, blue])
    assert [(t.name, t.source) for t in tags[red]] == [("blue", "user")]
    assert tags[green] == []
    assert [(t.name, t.source) for t in tags[blue]] == [("blue", "user")]
    assert run.examples == {"blue": 1}  # the confirmed blue on red.jpg taught the label
    assert run_label_set(library, "colours", model).examples == {"blue": 2}  # and now the applied one too


def test_apply_above_confirms_only_confident_suggestions(library, model, photos):
    vectors = label_vectors(model, LABELS)
    for i in range(3):
        photos.add(f"p{i}.jpg", vectors[i])
    create_label_set(library, "colours", LABELS)
    dry = run_label_set(library, "colours", model, write=False)
    assert suggestions(library) == {}  # write=False wrote nothing
    confidences = sorted(outcome.confidence for outcome in dry.outcomes)
    threshold = (confidences[0] + confidences[1]) / 2
    run = run_label_set(library, "colours", model, apply_above=threshold)
    assert (run.applied, run.suggested) == (2, 1)
    with pytest.raises(ClipdeskError, match="apply-above"):
        run_label_set(library, "colours", model, apply_above=1.5)


def test_running_without_embeddings_says_what_to_do(library, model, photos):
    photos.add("a.jpg")
    create_label_set(library, "colours", LABELS)
    with pytest.raises(EmptyLibraryError, match="index first"):  # nothing indexed: a GUI says "Add a folder"
        run_label_set(library, "colours", model)


def test_a_run_over_some_photos_scores_and_replaces_only_theirs(library, model, photos):
    vectors = label_vectors(model, LABELS)
    noise = np.random.default_rng(1).standard_normal((6, vectors.shape[1])) * 0.02
    ids = [photos.add(f"{label}{i}.jpg", vectors[i % 3] + noise[i]) for i, label in enumerate(LABELS * 2)]
    not_embedded = photos.add("not-embedded.jpg")
    create_label_set(library, "colours", LABELS)
    add_tags(library, [ids[3]], ["red"])  # a confirmed example outside the chosen photos
    whole = {outcome.photo_id: outcome for outcome in run_label_set(library, "colours", model, write=False).outcomes}

    chosen = [ids[1], ids[2], ids[5], not_embedded]
    run = run_label_set(library, "colours", model, photo_ids=chosen)
    assert run.photos == 3 and {outcome.photo_id for outcome in run.outcomes} == {ids[1], ids[2], ids[5]}
    assert run.examples == {"red": 1}  # the library's confirmed tags still teach the labels
    for outcome in run.outcomes:  # the same answer as a whole-library run gives these photos
        assert (outcome.label, outcome.status) == (whole[outcome.photo_id].label, whole[outcome.photo_id].status)
        assert outcome.confidence == pytest.approx(whole[outcome.photo_id].confidence, abs=1e-5)
    suggested = {s.photo_id for items in suggestions(library, LABELS).values() for s in items}
    assert suggested == {ids[1], ids[2], ids[5]}

    run_label_set(library, "colours", model, photo_ids=[ids[0]])  # another selection: the first one's stay
    suggested = {s.photo_id for items in suggestions(library, LABELS).values() for s in items}
    assert suggested == {ids[0], ids[1], ids[2], ids[5]}
    reject_suggestions(library, [ids[1]], "green")
    run_label_set(library, "colours", model, photo_ids=[ids[1]])  # re-running replaces, never revives a rejection
    tags = tags_of_photos(library, [ids[1]])[ids[1]]
    assert tags == []

    with pytest.raises(ClipdeskError, match="none of the 1 chosen photos is embedded"):
        run_label_set(library, "colours", model, photo_ids=[not_embedded])
    with pytest.raises(ClipdeskError, match="no photo with id 999999"):
        run_label_set(library, "colours", model, photo_ids=[999999])


def test_labels_commands_end_to_end(tiny_model_package, tmp_path, capsys, clipdesk_home):
    from PIL import Image

    folder = tmp_path / "pics"
    folder.mkdir()
    for i, colour in enumerate([(250, 0, 0), (0, 250, 0), (0, 0, 250)]):
        Image.new("RGB", (40, 30), colour).save(folder / f"p{i}.png")
    model = str(tiny_model_package)
    assert run_cli(["index", str(folder), "--model", model]) == 0
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("red\ngreen\nblue\n")
    assert run_cli(["labels", "create", "colours", "--labels", str(labels_file), "--template", "ensemble-7"]) == 0
    assert run_cli(["labels", "list", "--json"]) == 0
    capsys.readouterr()
    assert run_cli(["labels", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "colours" and listed[0]["labels"] == LABELS and len(listed[0]["templates"]) == 7
    assert run_cli(["labels", "run", "colours", "--model", model, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["photos"] == 3 and len(result["outcomes"]) == 3
    for outcome in result["outcomes"]:
        assert outcome["status"] in ("suggested", "none")
        scores = [item["score"] for item in outcome["labels"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) + outcome["none"] == pytest.approx(1, abs=1e-5)
    # Any confidence clears the bar: every photo the dry run gave a label gets it as the user's own tag.
    expected = {outcome["path"]: [(outcome["label"], "user")] if outcome["status"] == "suggested" else []
                for outcome in result["outcomes"]}
    applied = sum(1 for tags in expected.values() if tags)
    assert applied > 0
    assert run_cli(["labels", "run", "colours", "--model", model, "--apply-above", "0.000001"]) == 0
    assert f", {applied} applied," in capsys.readouterr().out
    with Library() as library:
        paths = {library.photo_id(path): path for path in expected}
        tags = tags_of_photos(library, list(paths))
    assert {paths[photo_id]: [(tag.name, tag.source) for tag in found] for photo_id, found in tags.items()} == expected
    assert run_cli(["labels", "run", "nope", "--model", model]) == 1
    assert "no label set 'nope'" in capsys.readouterr().err
