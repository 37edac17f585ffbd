"""Sentence-aware chunking with one-sentence overlap and stable ids."""

from __future__ import annotations

import itertools
import random
from typing import SupportsIndex

import pytest

from rag.chunking import _END, approx_tokens, chunk_article, sentence_spans
from rag.loaders import iter_files, load_file, load_manifest, make_article
from rag.models import Article, Chunk
from rag.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def article(text: str, article_id: str = "art") -> Article:
    return make_article(article_id, text, None, {})


def synthetic(n_paragraphs: int = 6, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = ["river", "council", "budget", "minister", "harbour", "vote", "school", "bridge", "storm", "court"]
    paras = []
    for _ in range(n_paragraphs):
        sents = [" ".join(rng.choice(words) for _ in range(rng.randint(6, 18))).capitalize() + "."
                 for _ in range(rng.randint(2, 6))]
        paras.append(" ".join(sents))
    return "\n\n".join(paras) + "\n"


@pytest.fixture(scope="module")
def seeds() -> list[Article]:
    manifest = load_manifest(SEEDS, 5_000_000)
    return [a for p in iter_files(SEEDS) for a in load_file(p, 5_000_000, manifest)]


# ---- sentences -----------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "Kosovo will take deportees from the U.S. over the next year.",
    "Rwanda's foreign minister, Olivier J.P. Nduhungirehe, said so.",
    "Mr. Smith and Dr. Jones met Gen. Lee on Tuesday.",
    "President John F. Kennedy spoke in 1963.",
    "Growth was 2.5 percent, down from 3.1 percent.",
    "He said the talks were ongoing... still in the early stages.",
    "The prime minister left No. 10 Downing Street at noon.",
])
def test_abbreviations_do_not_end_a_sentence(text: str) -> None:
    assert sentences(text) == [text]


def test_sentence_ends() -> None:
    text = 'It rained. Did it stop? "No!" she said. The river rose 2 metres.\nA new line starts here'
    assert sentences(text) == ["It rained.", "Did it stop?", '"No!" she said.', "The river rose 2 metres.",
                               "A new line starts here"]



def test_no_before_a_capitalised_word_ends_a_sentence() -> None:
    """"no." was always taken for "No." (number), so a council's votes were one sentence thousands long."""
    assert sentences("Councillor 1 voted no. Councillor 2 voted yes. The No. 2 official abstained.") == [
        "Councillor 1 voted no.", "Councillor 2 voted yes.", "The No. 2 official abstained."]

def test_sentence_spans_respect_bounds_and_trim() -> None:
    text = "  One. Two three.  Four.  "
    spans = sentence_spans(text, 2, 18)
    assert [text[a:b] for a, b in spans] == ["One.", "Two three."]



class CountingText(str):
    """A text that counts the characters read out of it by indexing and slicing."""

    read = 0

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        part = str.__getitem__(self, key)
        self.read += len(part)
        return part


def test_skipped_abbreviations_are_not_read_again() -> None:
    """Each full stop skipped as an abbreviation used to re-read the sentence so far (a regex over
    ``text[cur:stop]``): 8,000 of them in one sentence took 35 s. Each character is now read a few times."""
    text = CountingText("The motion was backed by " + "".join(f"Dr. Member{i}, " for i in range(2000)) + "and passed.")
    assert sentence_spans(text) == [(0, len(text))]
    assert text.read <= 4 * len(text)  # it read the text ~1,000 times over


def test_a_run_of_full_stops_is_tried_from_its_first_stop_only() -> None:
    """The sentence-end pattern was tried at every stop of a run, each try reading the rest of the run (and
    the spaces after it): quadratic, 20,000 full stops took 9 s, a 5 MB file of them hours. It now starts
    only at a run's first stop, which splits sentences the same way."""
    text = "Wait" + "." * 20 + " Then go?! Yes."
    assert _END.match(text, 5) is None  # the second stop of the run
    assert sentences(text) == ["Wait" + "." * 20, "Then go?!", "Yes."]


def test_the_marks_ending_a_line_are_tried_from_the_first_of_a_run_only() -> None:
    """Tried from each mark of a run, a line of 20,000 stars took 1.2 s (quadratic)."""
    from rag.cleaning import _MARKS, _plain

    assert _MARKS.match("x****", 2) is None  # inside the run
    assert _plain("**Bold lead**") == "Bold lead" and _plain("a" + "*" * 50 + "b") == "a" + "*" * 50 + "b"


# ---- chunks --------------------------------------------------------------------------------
@pytest.mark.parametrize("max_tokens", [40, 80, 120, 250])
def test_chunks_are_exact_slices_within_budget(seeds: list[Article], max_tokens: int) -> None:
    for a in seeds:
        chunks = chunk_article(a, max_tokens)
        assert [c.index for c in chunks] == list(range(len(chunks)))
        for c in chunks:
            assert c.text == a.text[c.start:c.end]
            assert c.article_id == a.id and (c.title, c.outlet, c.date) == (a.title, a.outlet, a.date)
            assert approx_tokens(c.text) <= max_tokens


def test_every_kept_sentence_is_in_a_chunk(seeds: list[Article]) -> None:
    for a in seeds:
        chunks = chunk_article(a)
        for s0, s1 in a.spans:
            for x, y in sentence_spans(a.text, s0, s1):
                assert any(c.start <= x and y <= c.end for c in chunks), a.text[x:y]


def test_chunks_never_cross_removed_boilerplate() -> None:
    text = synthetic(2) + "\nPhoto: Jane Roe/Reuters\n\n" + synthetic(2, seed=1)
    a = article(text)
    assert len(a.spans) == 2
    for c in chunk_article(a, 60):
        assert any(s0 <= c.start and c.end <= s1 for s0, s1 in a.spans)
        assert "Photo" not in c.text


def consecutive(chunks: list[Chunk]) -> list[tuple[Chunk, Chunk]]:
    return list(itertools.pairwise(chunks))


def test_consecutive_chunks_overlap_by_one_sentence() -> None:
    a = article(synthetic(8))
    chunks = chunk_article(a, 80, overlap=1)
    assert len(chunks) > 4
    overlapping = 0
    for prev, nxt in consecutive(chunks):
        if len(sentence_spans(a.text, prev.start, prev.end)) < 2:
            continue  # a lone sentence filling a whole chunk is not repeated
        shared = sentence_spans(a.text, nxt.start, prev.end)
        assert len(shared) == 1 and shared[0] == (nxt.start, prev.end)  # exactly the last sentence of prev
        overlapping += 1
    assert overlapping >= len(chunks) // 2


def test_overlap_zero_gives_disjoint_chunks() -> None:
    a = article(synthetic(8))
    for prev, nxt in consecutive(chunk_article(a, 60, overlap=0)):
        assert nxt.start > prev.end


def test_a_very_long_sentence_is_split_at_words() -> None:
    words = [f"word{i}" for i in range(3000)]
    a = article(" ".join(words) + ".\n\nA short closing sentence.\n")
    chunks = chunk_article(a, 100)
    assert len(chunks) > 20
    for c in chunks:
        assert c.text == a.text[c.start:c.end]
        assert approx_tokens(c.text) <= 100
        assert not c.text[0].isspace() and not c.text[-1].isspace()
    covered = " ".join(c.text for c in chunks)
    assert all(w in covered for w in words)


def test_a_huge_unpunctuated_text_chunks_quickly() -> None:
    a = article("lorem ipsum dolor " * 250_000)  # 4.5 MB, no sentence end, no newline
    chunks = chunk_article(a, 120)
    assert chunks[0].start == 0 and chunks[-1].end == len(a.text.rstrip())
    assert all(len(c.text) <= 480 for c in chunks)


# ---- ids -----------------------------------------------------------------------------------
def test_ids_are_stable_and_unique(seeds: list[Article]) -> None:
    for a in seeds:
        first = [c.id for c in chunk_article(a)]
        again = [c.id for c in chunk_article(a.model_copy())]
        assert first == again
        assert len(set(first)) == len(first)


def test_ids_derive_from_article_offset_and_content() -> None:
    a = article(synthetic(3), "story-1")
    b = article(synthetic(3), "story-2")
    for ca, cb in zip(chunk_article(a, 60), chunk_article(b, 60), strict=True):
        assert ca.id.startswith("story-1@") and str(ca.start) in ca.id
        assert ca.id != cb.id and ca.text == cb.text


def test_changing_one_sentence_changes_only_the_chunks_that_hold_it() -> None:
    text = synthetic(8, seed=3)
    a = article(text)
    old = chunk_article(a, 60)
    target = old[len(old) // 2]
    sent_a, sent_b = sentence_spans(text, target.start, target.end)[1]
    changed = text[:sent_a] + text[sent_a:sent_b].upper() + text[sent_b:]  # same length, new content
    new = chunk_article(article(changed), 60)
    assert [(c.start, c.end) for c in new] == [(c.start, c.end) for c in old]
    for o, n in zip(old, new, strict=True):
        holds = o.start <= sent_a and sent_b <= o.end
        assert (o.id != n.id) == holds


def test_editing_the_end_keeps_earlier_ids() -> None:
    text = synthetic(8, seed=4)
    old = chunk_article(article(text), 60)
    new = chunk_article(article(text + "\nOne more closing sentence was added.\n"), 60)
    assert [c.id for c in new[:-2]] == [c.id for c in old[:-2]]
