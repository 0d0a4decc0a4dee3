from clipdesk.data.sample_rows import sample_rows


def test_seeded_subset_is_reproducible_and_drawn_from_the_source(tmp_path):
    source = tmp_path / "all.jsonl"
    source.write_text("".join(f'{{"i": {i}}}\n' for i in range(100)) + "\n")
    first, second, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert sample_rows(source, first, 10) == 10
    sample_rows(source, second, 10)
    sample_rows(source, other, 10, seed=1)
    rows = first.read_text().splitlines()
    assert rows == second.read_text().splitlines() != other.read_text().splitlines()
    assert len(set(rows)) == 10 and set(rows) <= set(source.read_text().splitlines())
    assert rows != [f'{{"i": {i}}}' for i in range(10)]  # shuffled, not the head of the file
