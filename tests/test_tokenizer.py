"""The run-side tokenizer against token ids produced by OpenAI's reference tokenizer."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REFERENCE, reference_expected

from clipdesk.errors import ClipdeskError
from clipdesk.runtime.tokenizer import Tokenizer, get_tokenizer

SOT, EOT = 49406, 49407


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return get_tokenizer()


def test_every_reference_string_gets_the_reference_ids(tokenizer):
    rows = [json.loads(line) for line in (REFERENCE / "tokenizer.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 323
    got = tokenizer([row["text"] for row in rows])
    expected = np.array([row["ids"] for row in rows], dtype=np.int64)
    mismatched = [row["text"] for row, a, b in zip(rows, got, expected) if not np.array_equal(a, b)]
    assert not mismatched, f"{len(mismatched)} strings differ, first: {mismatched[:3]!r}"


def test_reference_captions_match_the_expected_token_ids(tokenizer, reference_inputs):
    expected = reference_expected("openai-vit-tiny")["token_ids"]
    got = tokenizer(reference_inputs["captions"])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


def test_rows_are_start_ids_end_then_padding(tokenizer):
    row = tokenizer("a photo of a dog")
    assert row.shape == (1, 77) and row.dtype == np.int64
    ids = tokenizer.encode("a photo of a dog")
    assert ids == [320, 1125, 539, 320, 1929]
    assert row[0, : len(ids) + 2].tolist() == [SOT, *ids, EOT]
    assert not row[0, len(ids) + 2 :].any()


def test_long_text_is_cut_and_keeps_the_end_token(tokenizer):
    rows = tokenizer(["dog " * 200, "cat"], context_length=16)
    assert rows.shape == (2, 16)
    assert rows[0, 0] == SOT and rows[0, -1] == EOT
    assert rows[0, 1:-1].tolist() == [1929] * 14
    assert rows[1, :3].tolist() == [SOT, 2368, EOT]


def test_html_entities_are_unescaped_twice(tokenizer):
    # With a "<" in the text ftfy leaves entities alone, so both of the reference's unescapes show.
    assert tokenizer.encode("< &amp;amp;") == tokenizer.encode("< &") == [283, 261]


def test_special_token_text_stays_one_token_as_in_the_reference(tokenizer):
    assert tokenizer.encode("a <|endoftext|> b") == [320, EOT, 321]


def test_decode_reverses_encode_for_clean_text(tokenizer):
    text = "a café in zürich, 😀 at 5 pm"
    assert tokenizer.decode(tokenizer.encode(text)) == "a café in zürich , 😀 at 5 pm "
    with pytest.raises(ValueError):
        tokenizer.decode([tokenizer.vocab_size])


def test_properties_and_shared_instance(tokenizer):
    assert (tokenizer.sot_token, tokenizer.eot_token, tokenizer.vocab_size) == (SOT, EOT, 49408)
    assert get_tokenizer() is tokenizer


def test_unreadable_vocabulary_is_a_clipdesk_error(tmp_path):
    with pytest.raises(ClipdeskError, match="missing.txt.gz"):
        Tokenizer(tmp_path / "missing.txt.gz")
    short = tmp_path / "short.txt.gz"
    short.write_bytes(gzip.compress(b"#version: 0.2\ni n\n"))
    with pytest.raises(ClipdeskError, match="not a CLIP BPE merge list"):
        Tokenizer(short)


def test_tokenizer_does_not_import_torch():
    code = "import sys, clipdesk.runtime.tokenizer as t; t.get_tokenizer()('a dog'); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
