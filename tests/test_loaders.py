"""Loading files into Articles: formats, metadata, boilerplate removal and bad input."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from rag.chunking import chunk_article
from rag.errors import InputError
from rag.jsonl import json_objects
from rag.loaders import iter_files, load_file, load_manifest, load_records
from rag.models import Article
from rag.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
LIMIT = 5_000_000


def load_one(path: Path, manifest: dict[str, dict[str, str | None]] | None = None) -> Article:
    (article,) = load_file(path, LIMIT, manifest)
    return article


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def kept(article: Article) -> str:
    return article.clean_text


def chunk_texts(article: Article) -> str:
    return "\n".join(c.text for c in chunk_article(article))


@pytest.fixture(scope="module")
def seeds() -> dict[str, Article]:
    manifest = load_manifest(SEEDS, LIMIT)
    return {p.name[:3]: load_one(p, manifest) for p in iter_files(SEEDS)}


@pytest.fixture(scope="module")
def bare_seeds() -> dict[str, Article]:
    """The seeds without their manifest: only what the text itself states."""
    return {p.name[:3]: load_one(p) for p in iter_files(SEEDS)}


# ---- the seed articles ---------------------------------------------------------------------
def test_seed_ids_are_file_stems(seeds: dict[str, Article]) -> None:
    assert sorted(seeds) == ["000", "001", "002", "003", "004"]
    assert seeds["000"].id == "000_04e378fec4435f9b"


def test_manifest_metadata_wins(seeds: dict[str, Article]) -> None:
    a = seeds["002"]
    assert (a.outlet, a.date, a.author) == ("Wyoming Star", "2025-06-13", "Michelle Larsen")
    assert a.title == "Kosovo Agrees to Accept U.S. Deportees as Part of Trump Administration Migration Deal"
    assert (seeds["000"].outlet, seeds["000"].date) == ("CBS News", "2025-06-11")
    assert seeds["001"].outlet == "Latin Times"


def test_metadata_stated_in_the_text(bare_seeds: dict[str, Article]) -> None:
    assert bare_seeds["000"].date == "2025-06-11"  # "date 2025-06-11 The European ..." prefix
    assert bare_seeds["001"].outlet == "Latin Times"  # from the copyright line
    s2 = bare_seeds["002"]
    assert s2.date == "2025-06-13"  # "• PublishedJune 13, 2025"
    assert s2.title == "Kosovo Agrees to Accept U.S. Deportees as Part of Trump Administration Migration Deal"
    assert s2.author == "Michelle Larsen"  # from the bio paragraph
    s3 = bare_seeds["003"]
    assert (s3.date, s3.author, s3.outlet) == ("2025-06-11", "James Meyers", "OAN")  # byline + dateline
    assert bare_seeds["004"].title == "Kosovo Agrees to Accept Deportees Under Trump Administration’s Migrant Policy"


def test_chunks_are_exact_slices_of_the_original(seeds: dict[str, Article]) -> None:
    for a in seeds.values():
        chunks = chunk_article(a)
        assert chunks
        for c in chunks:
            assert c.text == a.text[c.start:c.end]
            assert c.text == c.text.strip()


@pytest.mark.parametrize(("seed", "boilerplate"), [
    ("001", "© 2025 Latin Times"),
    ("001", "All rights reserved"),
    ("003", "Subscribe here"),
    ("003", "https://www.oann.com/alerts"),
    ("003", "OAN Staff James Meyers"),
    ("003", "10:36 AM"),
    ("002", "23-year-old journalist"),
    ("002", "Michelle has also interviewed"),
    ("002", "Europe Politics USA World"),
    ("002", "Source: AFP"),
    ("002", "PublishedJune"),
    ("004", "Migrant Policy"),  # the title, twice over, is metadata not body
    ("000", "date 2025-06-11"),
])
def test_seed_boilerplate_is_in_no_chunk(seeds: dict[str, Article], seed: str, boilerplate: str) -> None:
    assert boilerplate not in chunk_texts(seeds[seed])


def test_first_chunk_starts_after_the_date_prefix(seeds: dict[str, Article]) -> None:
    first = chunk_article(seeds["000"])[0]
    assert first.text.startswith("The European country of Kosovo")


@pytest.mark.parametrize(("seed", "fact"), [
    ("000", "agreed to host 50 deportees"),
    ("001", "Olivier J.P. Nduhungirehe"),
    ("001", "The flights did not end up materializing."),
    ("002", "at a facility in Pasjan"),
    ("002", "With input from Fox News."),
    ("003", "Correctional Institution in Gjilan"),
    ("003", "$217 million"),
    ("004", "Additionally, there were attempts to deport migrants"),
])
def test_seed_facts_survive_cleaning(seeds: dict[str, Article], seed: str, fact: str) -> None:
    assert fact in chunk_texts(seeds[seed])


# ---- general boilerplate rules on synthetic articles ---------------------------------------
BODY = ("The city council approved the new harbour budget on Tuesday after a long debate. "
        "Officials said the money would pay for dredging and two new cranes.\n\n"
        "Critics argued that the plan ignored the flood risk. The mayor rejected that view.\n")


def article_with(tmp_path: Path, before: str = "", after: str = "", name: str = "x.txt") -> Article:
    return load_one(write(tmp_path, name, before + BODY + after))


def test_full_synthetic_article(tmp_path: Path) -> None:
    text = ("Harbour Budget Passes After Long Debate\n\n"
            "By Jane Roe\n"
            "Published March 3, 2024\n\n"
            "Photo: John Smith/Reuters\n\n"
            + BODY +
            "\nSubscribe to our newsletter for daily updates.\n\n"
            "Jane Roe is a senior reporter at the Daily Planet covering city hall.\n\n"
            "© 2024 Daily Planet. All rights reserved.\n")
    a = load_one(write(tmp_path, "harbour.txt", text))
    assert a.id == "harbour"
    assert (a.title, a.author, a.date, a.outlet) == (
        "Harbour Budget Passes After Long Debate", "Jane Roe", "2024-03-03", "Daily Planet")
    assert kept(a).startswith("The city council approved") and kept(a).endswith("The mayor rejected that view.")
    chunks = chunk_texts(a)
    for gone in ("Harbour Budget Passes", "By Jane Roe", "Published", "Photo:", "Subscribe", "senior reporter",
                 "©"):
        assert gone not in chunks


@pytest.mark.parametrize("line", [
    "© 2024 Foo Media",
    "Copyright 2023 The Bar Times. All rights reserved.",
    "(c) 2021 Baz Corp",
    "All rights reserved. This material may not be published, broadcast, rewritten or redistributed.",
])
def test_copyright_lines_are_removed(tmp_path: Path, line: str) -> None:
    assert kept(article_with(tmp_path, after="\n" + line + "\n")) == BODY.strip()


@pytest.mark.parametrize("line", [
    "Subscribe to our newsletter for daily updates.",
    "Sign up for our morning newsletter: https://news.example/signup",
    "Follow us on Facebook and X.",
    "Get the latest headlines delivered to your inbox.",
    "Stay informed! Receive breaking news blasts directly to your inbox for free. Subscribe here.",
])
def test_subscribe_lines_are_removed(tmp_path: Path, line: str) -> None:
    assert kept(article_with(tmp_path, after="\n" + line + "\n")) == BODY.strip()


@pytest.mark.parametrize("line", [
    "Photo: Jane Roe/Reuters",
    "Image credit: NASA",
    "(AP Photo/Evan Vucci)",
    "Source: AFP/ Getty Images",
    "Photograph: Getty Images",
])
def test_photo_credit_lines_are_removed(tmp_path: Path, line: str) -> None:
    assert kept(article_with(tmp_path, before=line + "\n\n")) == BODY.strip()


def test_repeated_title_lines_are_removed(tmp_path: Path) -> None:
    title = "Harbour Budget Passes After Long Debate"
    a = article_with(tmp_path, before=f"News Local Politics\n\n{title}\n\n{title}\n\n", after=f"\n{title}\n")
    assert a.title == title
    assert kept(a) == BODY.strip()


def test_author_bio_paragraph_at_the_end_is_removed(tmp_path: Path) -> None:
    bio = ("\nJane Roe\n\nJane Roe is an award-winning journalist and editor for the Daily Planet. "
           "She has covered city politics, courts and the environment for a decade.\n")
    a = article_with(tmp_path, after=bio)
    assert kept(a) == BODY.strip()
    assert a.author == "Jane Roe"


@pytest.mark.parametrize(("before", "date"), [
    ("date 2025-06-11 ", "2025-06-11"),
    ("10:36 AM – Wednesday, June 11, 2025\n", "2025-06-11"),
    ("Published March 3, 2024\n", "2024-03-03"),
    ("Updated: 2024-03-05\n", "2024-03-05"),
    ("Published 3 March 2024\n", "2024-03-03"),
    ("Published Mar. 3, 2024\n", "2024-03-03"),
    ("June 11, 2025\n", "2025-06-11"),
])
def test_dates_stated_in_the_text(tmp_path: Path, before: str, date: str) -> None:
    a = article_with(tmp_path, before=before)
    assert a.date == date
    assert kept(a) == BODY.strip()


@pytest.mark.parametrize(("before", "author", "outlet"), [
    ("By Jane Roe\n", "Jane Roe", None),
    ("by Jane A. Roe\n", "Jane A. Roe", None),
    ("OAN Staff James Meyers\n", "James Meyers", "OAN"),
])
def test_bylines(tmp_path: Path, before: str, author: str, outlet: str | None) -> None:
    a = article_with(tmp_path, before=before)
    assert (a.author, a.outlet) == (author, outlet)
    assert kept(a) == BODY.strip()


@pytest.mark.parametrize("sentence", [
    "The newsletter, which has two million readers, reported the resignation on Monday.",
    "Copyright holders sued the company on Tuesday, saying it had copied their books.",
    "Sources said the minister would resign before the vote.",
    "Voters can sign up to vote until Friday, the election office said.",
    "John Smith is a journalist who was detained in Moscow last year, his lawyer said.",
    "Photos by the ministry showed the damage to the bridge.",
    "By Friday the river had fallen by two metres.",
])
def test_body_sentences_that_look_like_boilerplate_are_kept(tmp_path: Path, sentence: str) -> None:
    a = article_with(tmp_path, before=sentence + "\n\n")
    assert sentence in kept(a)
    assert sentence in chunk_texts(a)


def test_a_markdown_first_heading_is_the_title(tmp_path: Path) -> None:
    """A sentence-case "# Heading" failed the capitals test of a title and was kept as article text."""
    text = "# Bridge collapses in Springfield\n\n" + BODY
    a = load_one(write(tmp_path, "b.md", text))
    assert a.title == "Bridge collapses in Springfield" and kept(a) == BODY.strip()
    assert load_one(write(tmp_path, "b.txt", text)).title is None  # a .txt file is read as before
    assert load_one(write(tmp_path, "c.md", "## Bridge collapses in Springfield\n\n" + BODY)).title is None


def test_markdown_title_and_byline(tmp_path: Path) -> None:
    a = load_one(write(tmp_path, "m.md", "# Harbour Budget Passes After Long Debate\n\n**By Jane Roe**\n\n" + BODY))
    assert a.title == "Harbour Budget Passes After Long Debate"
    assert a.author == "Jane Roe"
    assert kept(a) == BODY.strip()



FRONT = ('---\ntitle: "Bridge collapses in Springfield"\ndate: 2024-03-05\nauthor: Jane Roe\n'
         "tags: [bridges, local]\nlayout: post\n---\n\n# Bridge collapses in Springfield\n\n")


def test_markdown_front_matter_is_metadata_not_text(tmp_path: Path) -> None:
    """The front matter was stored as the article's first passage, and its metadata was not read."""
    path = write(tmp_path, "bridge.md", FRONT + BODY)
    a = load_one(path)
    assert (a.title, a.date, a.author, a.outlet) == ("Bridge collapses in Springfield", "2024-03-05", "Jane Roe", None)
    assert kept(a) == BODY.strip() and chunk_texts(a).startswith("The city council approved")
    a = load_one(path, {"bridge": {"title": "Manifest Title", "outlet": "Daily Planet", "date": None}})
    assert (a.title, a.outlet, a.date) == ("Manifest Title", "Daily Planet", "2024-03-05")  # the manifest wins


def test_front_matter_values(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "f.md", "---\nTitle: 'It''s open'  \ndate: March 5, 2024 # first print\noutlet:\n"
                                   "author:\n  - Jane Roe\n  - John Doe\n---\n" + BODY)
    with caplog.at_level("WARNING", logger="rag"):
        a = load_one(path)
    assert (a.title, a.date, a.author, a.outlet) == ("It's open", "2024-03-05", None, None)  # dated as a manifest is
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {path}:5: front matter field 'author' must be one line of text, not a list; it is left out"]
    assert kept(load_one(write(tmp_path, "rule.md", "---\n\n" + BODY))) == "---\n\n" + BODY.strip()  # no closing line

def test_file_metadata_beats_what_the_text_says(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "By Jane Roe\nPublished March 3, 2024\n\n" + BODY)
    a = load_one(path, {"x": {"author": "Someone Else", "date": "June 11, 2025", "title": None}})
    assert (a.author, a.date) == ("Someone Else", "2025-06-11")


@pytest.mark.parametrize(("given", "stored"), [
    ("2024-03-05", "2024-03-05"), ("2024-03-05T10:00:00Z", "2024-03-05"), ("5 March 2024", "2024-03-05"),
    ("20240305", "2024-03-05"), ("2024/03/05", "2024-03-05"), ("2024-3-5", "2024-03-05"), ("2024.03.05", "2024-03-05"),
    ("March 5th, 2024", "2024-03-05"), ("1st March 2024", "2024-03-01"), ("yesterday", None), ("2024-13-45", None),
    ("2024/02/30", None), ("February 30, 2024", None), ("05/03/2024", None)])
def test_a_given_date_that_is_no_date_is_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture, given: str,
                                                   stored: str | None) -> None:
    """A manifest date such as "yesterday" or "2024-13-45" was stored as it stood and shown on citations."""
    path = write(tmp_path, "x.txt", BODY)
    with caplog.at_level("WARNING", logger="rag.loaders"):
        a = load_one(path, {"x": {"date": given}})
    assert a.date == stored
    assert [r.getMessage() for r in caplog.records] == ([] if stored else [
        f"warning: {path}: date '{given}' is not a date (give yyyy-mm-dd, or e.g. March 5, 2024); it is left out"])


def test_a_bad_given_date_gives_way_to_the_text_s(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    md = write(tmp_path, "f.md", "---\ndate: soon\n---\nPublished March 3, 2024\n\n" + BODY)
    with caplog.at_level("WARNING", logger="rag.loaders"):
        assert load_one(md).date == "2024-03-03"
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {md}: date 'soon' is not a date (give yyyy-mm-dd, or e.g. March 5, 2024); it is left out"]
    path = write(tmp_path, "t.jsonl", json.dumps({"id": "r", "text": BODY, "date": "2024-02-30"}) + "\n")
    (article,), _ = load_records(path, LIMIT)
    assert article.date is None and f"warning: {path}:1: date '2024-02-30' is not a date" in caplog.text


def test_crlf_text_keeps_exact_offsets(tmp_path: Path) -> None:
    path = tmp_path / "w.txt"
    path.write_bytes(("Harbour Budget Passes After Long Debate\r\n\r\nBy Jane Roe\r\n\r\n"
                      + BODY.replace("\n", "\r\n")).encode())
    a = load_one(path)
    assert a.author == "Jane Roe"
    for c in chunk_article(a):
        assert c.text == a.text[c.start:c.end] and "\r" not in c.text[-1:]


# ---- JSON Lines ----------------------------------------------------------------------------
def test_jsonl_one_article_per_line(tmp_path: Path) -> None:
    lines = [
        {"id": "a1", "text": BODY, "title": "Harbour Budget", "source": "Daily Planet",
         "published_at": "2024-03-03T10:00:00Z", "url": "https://planet.example/a1"},
        {"doc_id": "a2", "text": "By Jane Roe\n\n" + BODY, "outlet": "Bugle", "date": "March 4, 2024"},
        {"text": BODY.replace("Tuesday", "Wednesday")},
    ]
    path = write(tmp_path, "batch.jsonl", "\n".join(json.dumps(x) for x in lines[:2]) + "\n\n"
                 + json.dumps(lines[2]) + "\n")
    a1, a2, a3 = load_file(path, LIMIT)
    assert (a1.id, a1.title, a1.outlet, a1.date, a1.url) == (
        "a1", "Harbour Budget", "Daily Planet", "2024-03-03", "https://planet.example/a1")
    assert (a2.id, a2.outlet, a2.date, a2.author) == ("a2", "Bugle", "2024-03-04", "Jane Roe")
    assert a3.id == "batch-4"  # no id: file stem + line number
    assert a1.source == f"{path}:1" and a3.source == f"{path}:4"
    assert kept(a2) == BODY.strip()


def test_jsonl_manifest_wins_over_record(tmp_path: Path) -> None:
    path = write(tmp_path, "b.jsonl", json.dumps({"id": "a1", "text": BODY, "outlet": "Bugle"}) + "\n")
    (a,) = load_file(path, LIMIT, {"a1": {"outlet": "Daily Planet"}})
    assert a.outlet == "Daily Planet"


# ---- bad input -----------------------------------------------------------------------------
def check_error(exc: pytest.ExceptionInfo[InputError], where: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(where), msg


@pytest.mark.parametrize(("name", "data"), [
    ("empty.txt", b""),
    ("blank.txt", b"  \n\t\r\n   \n"),
    ("binary.txt", b"PK\x03\x04\x00\x00\x14\x00binary junk"),
    ("late-nul.txt", b"a" * 10_000 + b"\x00" + b"b" * 100),
    ("image.png", b"\x89PNG\r\n"),
    ("notes.pdf", b"%PDF-1.4 text"),
    ("empty.jsonl", b"\n\n"),
    ("only-boilerplate.txt", "© 2024 Daily Planet. All rights reserved.\n".encode()),
])
def test_bad_files_raise_one_line_naming_the_file(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as exc:
        load_file(path, LIMIT)
    check_error(exc, f"{path}:")


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "big.txt", BODY * 10)
    with pytest.raises(InputError, match="limit") as exc:
        load_file(path, 100)
    check_error(exc, f"{path}:")


def test_a_folder_or_missing_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "dir.txt").mkdir()
    for path in (tmp_path / "dir.txt", tmp_path / "missing.txt"):
        with pytest.raises(InputError) as exc:
            load_file(path, LIMIT)
        check_error(exc, f"{path}:")


@pytest.mark.parametrize(("line3", "expect"), [
    ('{"id": "c", "text": "unterminated', "invalid JSON"),
    ('{"id": "c", "title": "no text"}', "text"),
    ('{"id": "c", "text": "   "}', "text"),
    ('{"id": "c", "text": 42}', "text"),
    ('["not", "an", "object"]', "object"),
])
def test_bad_jsonl_line_names_file_and_line(tmp_path: Path, line3: str, expect: str) -> None:
    good = json.dumps({"text": BODY})
    path = write(tmp_path, "b.jsonl", f"{good}\n{good}\n{line3}\n")
    with pytest.raises(InputError, match=expect) as exc:
        load_file(path, LIMIT)
    check_error(exc, f"{path}:3:")


def test_jsonl_lines_end_only_at_cr_or_lf(tmp_path: Path) -> None:
    # json.dumps(..., ensure_ascii=False) writes U+2028, U+2029 and U+0085 as they are: str.splitlines breaks there
    recs = [{"id": "a", "text": BODY + "\u2028Second paragraph.\u2029Third\x85."}, {"id": "b", "text": BODY}]
    path = write(tmp_path, "ls.jsonl", "\r\n".join(json.dumps(r, ensure_ascii=False) for r in recs) + "\n")
    assert [(a.id, a.source, a.text) for a in load_file(path, LIMIT)] == [
        ("a", f"{path}:1", recs[0]["text"]), ("b", f"{path}:2", BODY)]
    errors: list[str] = []
    assert list(json_objects(path, '{"a": "cut \u2028 here\n{"b": 1}\n', errors)) == [(2, {"b": 1})]
    assert errors == [f"{path}:1: invalid JSON (Unterminated string starting)"]  # not "... at)" nor two lines


def test_json_objects_name_the_line_and_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    text = '{"a": 1}\n\n  \n{"a": \n[1, 2]\n{"b": 2}\n'
    errors: list[str] = []
    assert list(json_objects(path, text, errors)) == [(1, {"a": 1}), (6, {"b": 2})]
    assert errors == [f"{path}:4: invalid JSON (Expecting value)", f"{path}:5: expected a JSON object"]
    objects = json_objects(path, text)  # without ``errors`` the first bad line raises
    assert next(objects) == (1, {"a": 1})
    with pytest.raises(InputError, match="^" + re.escape(f"{path}:4: invalid JSON (Expecting value)") + "$"):
        next(objects)
    with pytest.raises(InputError, match="^" + re.escape(f"{path}:4: invalid JSON (Expecting value at column 7)")):
        list(json_objects(path, text, column=True))


def test_cp1252_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("The café owner said “prices rose” by 5 €.\n".encode("cp1252"))
    a = load_one(path)
    assert "café" in a.text and "“prices rose”" in a.text and "€" in a.text
    path.write_bytes("Ä“ is rare, but the café’s owner said “prices rose” by 5 € in Pristina.\n".encode("cp1252"))
    assert load_one(path).text.startswith("Ä“ is rare, but the café’s")  # one UTF-8-like pair: still cp1252


def test_mostly_utf8_text_with_stray_bytes_is_read_as_utf8(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A UTF-8 file with a few cp1252 bytes pasted in is not re-read wholesale as cp1252 (mojibake)."""
    path = tmp_path / "mixed.txt"
    path.write_bytes("Café owners in Pristina said prices rose — a lot ".encode() + b"\xe9t\xe9 more, they said.\n")
    with caplog.at_level("WARNING", logger="rag.loaders"):
        a = load_one(path)
    assert a.text == "Café owners in Pristina said prices rose — a lot \ufffdt\ufffd more, they said.\n"
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {path}: 2 byte(s) are not valid UTF-8; read as UTF-8 with them replaced by U+FFFD"]


def test_utf8_bom_and_utf16_text_are_decoded(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes("\ufeffThe café opened.\n".encode())
    (tmp_path / "u16.txt").write_bytes("The café opened.\n".encode("utf-16"))
    for name in ("bom.txt", "u16.txt"):
        assert load_one(tmp_path / name).text.strip() == "The café opened."



@pytest.mark.parametrize("codec", ["utf-32", "utf-32-be", "utf-16", "utf-16-be"])
def test_text_with_a_byte_order_mark_is_read_without_it(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                         codec: str) -> None:
    """UTF-32 with a mark was "binary file, not text" (little-endian: its mark was taken for UTF-16's), or
    (big-endian) read with the mark as its first character, warning that it had no mark."""
    text = "Kosovo agreed on Wednesday to take in fifty deportees. The deal runs for one year.\n"
    path = tmp_path / "marked.txt"
    path.write_bytes(text.encode(codec) if codec in ("utf-32", "utf-16") else
                     "\ufeff".encode(codec) + text.encode(codec))  # "utf-32" writes a mark, "utf-32-be" does not
    with caplog.at_level("WARNING", logger="rag.loaders"):
        assert load_one(path).text == text
    assert not caplog.records

def test_a_broken_character_in_a_manifest_is_read_as_ufffd(tmp_path: Path) -> None:
    """A lone surrogate escape in a manifest's title crashed the ingest in Chroma."""
    write(tmp_path, "manifest.jsonl", '{"id": "a", "title": "Half \\ud83d emoji"}\n')
    assert load_manifest(tmp_path, LIMIT)["a"]["title"] == "Half \ufffd emoji"


def test_malformed_manifest_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "manifest.jsonl", '{"id": "a", "outlet": "X"}\n{oops\n')
    with pytest.raises(InputError) as exc:
        load_manifest(tmp_path, LIMIT)
    check_error(exc, f"{tmp_path / 'manifest.jsonl'}:2:")



def test_a_manifest_id_given_again_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The later line replaced the earlier one without a word (its title was lost)."""
    where = write(tmp_path, "manifest.jsonl", '{"id": "a", "title": "First Title"}\n{"id": "b", "title": "B"}\n'
                                              '{"id": "a", "outlet": "Second Outlet"}\n')
    with caplog.at_level("WARNING", logger="rag.loaders"):
        manifest = load_manifest(tmp_path, LIMIT)
    assert (manifest["a"]["title"], manifest["a"]["outlet"]) == (None, "Second Outlet")  # the line given last
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {where}:3: id 'a' is given again (line 1); this line is used"]
    write(tmp_path, "manifest.jsonl", "".join(f'{{"id": "{i % 10}"}}\n' for i in range(30)))
    caplog.clear()
    with caplog.at_level("WARNING", logger="rag.loaders"):
        load_manifest(tmp_path, LIMIT)
    assert len(caplog.records) == 6 and caplog.records[-1].getMessage() == (
        f"warning: {where}: 15 more ids are given again; the last line of each is used")

def test_fields_that_are_not_text_are_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recs = [{"id": 7, "text": BODY, "title": {"a": 1}, "source": {"name": "CNN"}, "outlet": ["X"]},
            {"id": True, "text": BODY}, {"id": ["l"], "text": BODY}]
    path = write(tmp_path, "t.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
    with caplog.at_level("WARNING", logger="rag.loaders"):
        articles, errors = load_records(path, LIMIT)
    assert [(a.id, a.title, a.outlet) for a in articles] == [("7", None, None)]  # a number is an id; no "{'a': 1}"
    assert errors == [f"{path}:2: field 'id' must be text, not true/false",
                      f"{path}:3: field 'id' must be text, not a list"]
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {path}:1: field '{k}' must be text, not {kind}; it is left out"
        for k, kind in (("title", "a JSON object"), ("outlet", "a list"), ("source", "a JSON object"))]
    write(tmp_path, "manifest.jsonl", '{"id": "a", "titel": "T", "outlet": 3}\n{"id": "b", "autor": "x", "x": 1}\n'
                                      '{"id": "c", "author": false}\n')
    caplog.clear()
    with caplog.at_level("WARNING", logger="rag.loaders"):
        manifest = load_manifest(tmp_path, LIMIT)
    assert (manifest["a"]["outlet"], manifest["a"]["title"], manifest["c"]["author"]) == ("3", None, None)
    where = tmp_path / "manifest.jsonl"
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {where}:3: field 'author' must be text, not true/false; it is left out",
        f"warning: {where}: unknown field(s) 'titel' (line 1), 'autor' (line 2), 'x' (line 2) ignored"
        " (known: id, doc_id, title, outlet, date, author, url)"]



def test_a_text_that_is_not_text_is_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A number or list as 'text' was reported as "field 'text' is missing or empty"."""
    recs = [{"id": "n1", "text": 12345}, {"id": "n2", "text": ["a", "b"]}, {"id": "n3", "text": {"body": BODY}},
            {"id": "n4", "text": True}, {"id": "n5", "text": 1.5}, {"id": "n6"}, {"id": "n7", "text": " "},
            {"id": "ok", "text": BODY, "date": ["2024"], "author": {"n": "x"}, "url": False, "published_at": 20240305}]
    path = write(tmp_path, "t.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
    with caplog.at_level("WARNING", logger="rag.loaders"):
        articles, errors = load_records(path, LIMIT)
    assert errors == [f"{path}:{n}: field 'text' {problem}" for n, problem in (
        (1, "must be text, not a number"), (2, "must be text, not a list"), (3, "must be text, not a JSON object"),
        (4, "must be text, not true/false"), (5, "must be text, not a number"), (6, "is missing or empty"),
        (7, "is missing or empty"))]
    assert [(a.id, a.date, a.author, a.url) for a in articles] == [("ok", "2024-03-05", None, None)]  # a number is read
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {path}:8: field '{k}' must be text, not {kind}; it is left out"
        for k, kind in (("date", "a list"), ("author", "a JSON object"), ("url", "true/false"))]

def test_iter_files_skips_hidden_manifest_and_other_types(tmp_path: Path) -> None:
    for name in ("b.txt", "a.md", "c.jsonl", "manifest.jsonl", ".hidden.txt", "photo.jpg", "sub/d.txt",
                 ".git/e.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)] == [
        "a.md", "b.txt", "c.jsonl", "sub/d.txt"]
    with pytest.raises(InputError):
        iter_files(tmp_path / "nope")


def test_iter_files_says_what_it_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A folder of .html and .pdf files gave "added 0" and nothing else; a linked folder was passed over."""
    folder, outside = tmp_path / "news", tmp_path / "elsewhere"
    for path in (folder / "a.txt", folder / "page.html", folder / "sub" / "doc.pdf", folder / "README",
                 folder / ".cache" / "x.bin", outside / "b.txt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (folder / "linked").symlink_to(outside)
    with caplog.at_level("WARNING", logger="rag.loaders"):
        assert iter_files(folder) == [folder / "a.txt"]
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {folder}: skipped 3 file(s) of other types ((no extension), .html, .pdf); articles are .txt, "
        ".md, .jsonl files",
        f"warning: {folder}: skipped 1 link(s) to folders (linked); name a linked folder to ingest it"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="rag.loaders"):
        assert iter_files(folder / "linked") == [folder / "linked" / "b.txt"]
    assert not caplog.records


@pytest.mark.parametrize(("name", "shown"), [(b"caf\xe9.txt", "caf\\xe9.txt"),
                                             (b"line\nbreak.txt", "line\\nbreak.txt")],
                         ids=["latin-1-name", "line-break"])
def test_a_file_name_that_cannot_be_an_article_id_is_one_error_line(tmp_path: Path, name: bytes, shown: str) -> None:
    """A Latin-1 file name crashed the whole ingest in Chroma; a line break split the error over two lines."""
    path = Path(os.fsdecode(bytes(tmp_path) + b"/" + name))
    path.write_text(BODY)
    with pytest.raises(InputError) as exc:
        load_file(path, LIMIT)
    check_error(exc, f"{tmp_path}/{shown}: the file's path ")
    assert "rename it" in str(exc.value)


def test_broken_characters_in_a_jsonl_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A lone surrogate escape (half an emoji) is read as U+FFFD; an id with a line break is one error line."""
    path = write(tmp_path, "feed.jsonl", "\n".join([
        '{"id": "s1", "title": "Fans \\ud83d", "text": "Fans posted \\ud83d after the match ended in a draw."}',
        '{"id": "line\\nbreak", "text": "The harbour council approved the budget on Tuesday evening."}',
        '{"id": "ok", "text": "The bridge over the river reopened on Monday after a year of repairs."}']) + "\n")
    with caplog.at_level("WARNING", logger="rag.loaders"):
        articles, errors = load_records(path, LIMIT)
    assert [a.id for a in articles] == ["s1", "ok"]
    assert articles[0].text == "Fans posted \ufffd after the match ended in a draw."
    assert articles[0].title == "Fans \ufffd"
    assert errors == [f"{path}:2: the article id holds a control character (such as a line break)"]
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {path}:1: field '{f}' holds 1 broken character(s) (a lone surrogate escape); read as U+FFFD"
        for f in ("title", "text")]


@pytest.mark.parametrize("text", [
    "El Gobierno de España y el señor Muñoz anunciaron que la niña recibió atención en Peñíscola.\n",
    "Le ministère a déclaré que l'accord « très équilibré » sera signé à Genève où ça commence.\n",
    "O governo português não confirmou a informação, disse a porta-voz em Lisboa ontem à tarde.\n",
    "“We will act” — the minister said the plan costs €5m. It’s done.\n",
    "It costs €5m — a lot.\n",
    "“Yes.”\n",
], ids=["spanish", "french", "portuguese", "english-quotes", "english-euro", "short"])
def test_western_code_page_text_stays_cp1252(tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str) -> None:
    """The detector's first pick for these is cp1250 or cp1257, which would garble ñ, é, ã: cp1252 is kept."""
    path = tmp_path / "west.txt"
    path.write_bytes(text.encode("cp1252"))
    with caplog.at_level("WARNING", logger="rag.loaders"):
        assert load_one(path).text == text
    assert not caplog.records


@pytest.mark.parametrize(("text", "codec", "named"), [
    ("Η κυβέρνηση του Κοσόβου συμφώνησε να δεχτεί 50 απελαθέντες από τις Ηνωμένες Πολιτείες.\n",
     "iso-8859-7", "cp1253"),
    ("Правительство Косово согласилось принять 50 депортированных из США, сообщает агентство.\n",
     "cp1251", "cp1251"),
    ("Kosovo agreed to take 50 deportees from the United States, the embassy said.\n", "utf-16-le", "utf-16-le"),
    ("Η κυβέρνηση του Κοσόβου συμφώνησε να δεχτεί 50 απελαθέντες.\n", "utf-16-be", "utf-16-be"),
    ("Η κυβέρνηση ανακοίνωσε σήμερα.", "utf-16-le", "utf-16-le"),  # the detector says big-endian: CJK
], ids=["greek-iso-8859-7", "russian-cp1251", "utf-16-le", "utf-16-be", "short-greek-utf-16-le"])
def test_other_encodings_are_guessed_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str,
                                                    codec: str, named: str) -> None:
    """Greek and Cyrillic code pages were read as cp1252 (garbled), UTF-16 without a BOM was "binary"."""
    path = tmp_path / "other.txt"
    path.write_bytes(text.encode(codec))
    with caplog.at_level("WARNING", logger="rag.loaders"):
        assert load_one(path).text == text
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {path}: {'no byte-order mark' if codec.startswith('utf') else 'not UTF-8'}; "
        f"read as {named} (guessed)"]
