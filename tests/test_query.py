"""The search query language: terms, weights, image terms, filters and the errors people will hit."""

import pytest

from clipdesk.errors import ClipdeskError
from clipdesk.search.query import IMAGE, TEXT, Filters, QueryError, Term, parse_query


def terms(text, like=()):
    return [(term.kind, term.value, term.weight) for term in parse_query(text, like).terms]


@pytest.mark.parametrize("text, expected", [
    ("kids on a beach at sunset", [(TEXT, "kids on a beach at sunset", 1.0)]),
    ("  dog   in\tsnow ", [(TEXT, "dog in snow", 1.0)]),
    ('"2:red car" + beach - people', [(TEXT, "red car", 2.0), (TEXT, "beach", 1.0), (TEXT, "people", -1.0)]),
    ('2:"red car" beach', [(TEXT, "red car", 2.0), (TEXT, "beach", 1.0)]),
    ("red car + 0.5:beach", [(TEXT, "red car", 1.0), (TEXT, "beach", 0.5)]),
    (".5:beach", [(TEXT, "beach", 0.5)]),
    ("beach -people on bikes", [(TEXT, "beach", 1.0), (TEXT, "people on bikes", -1.0)]),
    ("beach - 2:people", [(TEXT, "beach", 1.0), (TEXT, "people", -2.0)]),
    ("-2:people", [(TEXT, "people", -2.0)]),
    ("+beach", [(TEXT, "beach", 1.0)]),
    ("2:dog cat", [(TEXT, "dog cat", 2.0)]),
    ("red car 2:beach", [(TEXT, "red car", 1.0), (TEXT, "beach", 2.0)]),
    ('"red car" beach', [(TEXT, "red car", 1.0), (TEXT, "beach", 1.0)]),
    ('beach "red car"', [(TEXT, "beach", 1.0), (TEXT, "red car", 1.0)]),
    ("red-eye t-shirt", [(TEXT, "red-eye t-shirt", 1.0)]),
    ("C++ code", [(TEXT, "C++ code", 1.0)]),
    ("3:30 pm", [(TEXT, "3:30 pm", 1.0)]),
    ('"tag:x" "- "', [(TEXT, "tag:x", 1.0), (TEXT, "- ", 1.0)]),
    ('"say \\"hi\\""', [(TEXT, 'say "hi"', 1.0)]),
    ("~/Pictures/dog.jpg", [(IMAGE, "~/Pictures/dog.jpg", 1.0)]),
    ("dog.JPEG + snow", [(IMAGE, "dog.JPEG", 1.0), (TEXT, "snow", 1.0)]),
    ('"my photos/a b.png" - 0.5:sky', [(IMAGE, "my photos/a b.png", 1.0), (TEXT, "sky", -0.5)]),
    ("like:scan.raw", [(IMAGE, "scan.raw", 1.0)]),
    ('like:"a b/c.dat" beach', [(IMAGE, "a b/c.dat", 1.0), (TEXT, "beach", 1.0)]),
    ("3:like:a.png", [(IMAGE, "a.png", 3.0)]),
    ("-like:a.png sunset", [(IMAGE, "a.png", -1.0), (TEXT, "sunset", 1.0)]),
    ("my dog.jpg", [(TEXT, "my dog.jpg", 1.0)]),  # a run of words is text; quote a path with spaces
])
def test_terms(text, expected):
    assert terms(text) == expected


def test_like_adds_image_terms_after_the_query():
    assert terms("sunset", like=["a.png", "b.jpg"]) == [(TEXT, "sunset", 1.0), (IMAGE, "a.png", 1.0),
                                                      (IMAGE, "b.jpg", 1.0)]
    assert terms("", like=["a.png"]) == [(IMAGE, "a.png", 1.0)]


def test_filters():
    query = parse_query('beach tag:family tag:"summer 2023" -tag:work folder:~/Pictures folder:/mnt/b '
                        '-folder:"/mnt/b/junk dir" TAG:Family')
    assert query.terms == (Term(TEXT, "beach", 1.0),)
    assert query.filters == Filters(tags=("family", "summer 2023", "Family"), exclude_tags=("work",),
                                    folders=("~/Pictures", "/mnt/b"), exclude_folders=("/mnt/b/junk dir",))


def test_filters_split_a_run_of_words():
    assert terms("dog tag:x on grass") == [(TEXT, "dog", 1.0), (TEXT, "on grass", 1.0)]


def test_operator_before_tag_negates_it():
    assert parse_query("beach - tag:work").filters.exclude_tags == ("work",)


@pytest.mark.parametrize("text, taken_from, taken_until", [
    ("after:2020", "2020-01-01", None),
    ("before:2021-03", None, "2021-03-01"),
    ("after:2020-02-29", "2020-02-29", None),
    ("date:2023", "2023-01-01", "2024-01-01"),
    ("date:2023-12", "2023-12-01", "2024-01-01"),
    ("date:2023-02-28", "2023-02-28", "2023-03-01"),
    ("date:2020..2021-02", "2020-01-01", "2021-03-01"),
    ("date:2020-06..", "2020-06-01", None),
    ("date:..2019", None, "2020-01-01"),
    ("date:2020..2022 after:2021-05 before:2022-02", "2021-05-01", "2022-02-01"),  # intersected
    ("after:2020 after:2022-01-05", "2022-01-05", None),
])
def test_dates(text, taken_from, taken_until):
    filters = parse_query(text).filters
    assert (filters.taken_from, filters.taken_until) == (taken_from, taken_until)


def test_filters_alone_make_a_query():
    query = parse_query("tag:family")
    assert query.terms == () and query.filters.tags == ("family",)


@pytest.mark.parametrize("text, kind", [("is:video", "video"), ("IS:Videos", "video"), ("is:photo", "photo"),
                                        ("-is:video", "photo"), ("-is:photos", "video"), ("beach", None)])
def test_is_keeps_videos_or_photos(text, kind):
    assert parse_query(text).filters.kind == kind


def test_a_video_path_is_an_image_term():
    assert parse_query("~/clips/dog.MP4 + snow").terms == (Term(IMAGE, "~/clips/dog.MP4"), Term(TEXT, "snow"))


@pytest.mark.parametrize("text, message", [
    ("", "empty query"),
    ("   ", "empty query"),
    ('"red car', "unclosed quote at column 1"),
    ('beach "red car', "unclosed quote at column 7"),
    ("beach +", "'+' must be followed by a term"),
    ("beach -", "'-' must be followed by a term"),
    ("beach + - people", "two operators in a row"),
    ("0:beach", "weight 0 must be above 0"),
    ("101:beach", "at most 100"),
    ('""', "empty term"),
    ("2:", "empty term"),
    ('2:""', "empty term after the weight"),
    ("colour:red", "unknown filter 'colour:'"),
    ("http://example.com", 'quote it: "http://example.com"'),
    ("tag:", "tag: needs a value"),
    ("folder:", "folder: needs a value"),
    ("like:", "like: needs a path"),
    ("+tag:x", "filters take no '+'"),
    ("-after:2020", "use after:/before: the other way round"),
    ("date:20201", "dates are written YYYY, YYYY-MM or YYYY-MM-DD"),
    ("after:2023-13", "after:2023-13: no such date"),
    ("date:2023-02-30", "no such date"),
    ("date:..", "give at least one end of the range"),
    ("after:2023 before:2023", "the date filters leave no dates"),
    ("date:2022..2021", "the date filters leave no dates"),
    ("is:movie", "write is:video or is:photo"),
    ("is:", "is: needs a value, e.g. is:video"),
    ("is:video is:photo", "is:video and is:photo together leave nothing"),
    ("is:video -is:video", "together leave nothing"),
])
def test_errors(text, message):
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ClipdeskError)


def test_like_path_must_not_be_empty():
    with pytest.raises(QueryError, match="--like needs a path"):
        parse_query("sunset", like=[""])
