"""Templates, label lists, names and the template ensemble's arithmetic."""

import numpy as np
import pytest

from clipdesk.errors import ClipdeskError
from clipdesk.tagging.names import clean_name, unique_names
from clipdesk.tagging.prompts import (MODEL_TEMPLATES, background_embedding, check_template, ensemble_embeddings, fill,
                                      parse_labels, resolve_templates)
from clipdesk.tagging.templates import BACKGROUND_WORDS, DEFAULT_TEMPLATE, PAPER_ENSEMBLE, PAPER_SUBSET


def test_the_papers_templates_are_all_there_once_with_one_slot_each():
    assert len(PAPER_ENSEMBLE) == 80 and len(set(PAPER_ENSEMBLE)) == 80
    assert set(PAPER_SUBSET) <= set(PAPER_ENSEMBLE) and len(PAPER_SUBSET) == 7
    assert DEFAULT_TEMPLATE == "a photo of a {}." and DEFAULT_TEMPLATE in PAPER_ENSEMBLE
    assert all(template.count("{}") == 1 for template in PAPER_ENSEMBLE)


def test_templates_resolve_from_names_and_literals_in_order_without_duplicates():
    assert resolve_templates(["ensemble"]) == PAPER_ENSEMBLE
    mixed = resolve_templates(["a drawing of a {}.", "default", "a photo of a {}.", "ensemble-7"])
    assert mixed == ("a drawing of a {}.", DEFAULT_TEMPLATE, *PAPER_SUBSET)
    for bad in ("a photo", "{} and {}", "   "):
        with pytest.raises(ClipdeskError, match="exactly one"):
            check_template(bad)
    with pytest.raises(ClipdeskError, match="unknown template 'ensemble80'.*model, default, ensemble, ensemble-7"):
        resolve_templates(["ensemble80"])
    assert fill("itap of a {}.", "red car") == "itap of a red car."


def test_no_template_means_the_models_own_which_stored_label_sets_keep_as_a_name():
    own = ("an emoji of a {}.", "{}")
    assert resolve_templates(None) == (MODEL_TEMPLATES,)  # stored as the name: follows a change of model
    assert resolve_templates(None, own) == own
    assert resolve_templates([MODEL_TEMPLATES, "default"], own) == (*own, DEFAULT_TEMPLATE)
    assert resolve_templates(None, ()) == (DEFAULT_TEMPLATE,)  # a model naming none: the paper's wording
    assert resolve_templates(["a drawing of a {}."], own) == ("a drawing of a {}.",)
    with pytest.raises(ClipdeskError, match="exactly one"):  # the name must be resolved before embedding
        ensemble_embeddings(None, ["cat"], (MODEL_TEMPLATES,))


def test_labels_come_from_a_list_or_a_file(tmp_path):
    assert parse_labels(" cat, dog ,,Cat ,  sea   lion") == ["cat", "dog", "sea lion"]
    listing = tmp_path / "labels.txt"
    listing.write_text("\ufeff# animals\ncat\n\n  dog  \nbird, small\n", encoding="utf-8")
    assert parse_labels(str(listing)) == ["cat", "dog", "bird, small"]  # commas belong to a label in a file
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ClipdeskError, match="no labels"):
        parse_labels(str(tmp_path / "empty.txt"))
    with pytest.raises(ClipdeskError, match="'\\|' is not allowed"):
        parse_labels("places|paris")


def test_names_are_tidied_and_checked():
    assert clean_name("  Sea \t lion ") == "Sea lion"
    assert unique_names(["Beach", "beach", "BEACH ", "dog"]) == ["Beach", "dog"]
    for bad in ("", "   ", "a|b", "tab\x07bell", "x" * 201):
        with pytest.raises(ClipdeskError):
            clean_name(bad)


class FakeText:
    """A text encoder whose embedding of a prompt is a fixed random unit vector (seeded by the prompt)."""

    def __init__(self):
        self.seen = []

    def encode(self, prompts, batch_size=64):
        self.seen += list(prompts)
        rows = [np.random.default_rng(abs(hash(p)) % 2**32).standard_normal(16) for p in prompts]
        rows = np.asarray(rows, np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_ensemble_averages_unit_embeddings_then_renormalises():
    text = FakeText()
    templates = ["a photo of a {}.", "art of the {}.", "a toy {}."]
    got = ensemble_embeddings(text, ["cat", "dog"], templates)
    for row, label in zip(got, ["cat", "dog"]):
        expected = text.encode([t.replace("{}", label) for t in templates]).mean(axis=0)
        np.testing.assert_allclose(row, expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
    single = ensemble_embeddings(text, ["cat"], ["a photo of a {}."])
    np.testing.assert_allclose(single[0], text.encode(["a photo of a cat."])[0], atol=1e-6)
    background = background_embedding(text, templates)
    assert background.shape == (16,) and abs(np.linalg.norm(background) - 1) < 1e-5
    assert {f"a toy {word}." for word in BACKGROUND_WORDS} <= set(text.seen)
