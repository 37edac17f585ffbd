"""Typed, frozen records passed between the library and its front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


@dataclass(frozen=True)
class Hit:
    """A chunk found by vector or keyword search (a plain dataclass: a search makes many)."""

    chunk_id: str
    article_id: str
    text: str
    score: float
    meta: dict[str, Any]
    embedding: Any = field(default=None, compare=False, repr=False)  # vector hits carry theirs


@dataclass(frozen=True)
class ArticleRow:
    """What the store lists about an article, without its text."""

    id: str
    title: str | None
    outlet: str | None
    date: str | None
    author: str | None
    source: str | None
    n_chunks: int
    fingerprint: str
    content_hash: str


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Article(Record):
    """One article. ``text`` is the original text; ``spans`` are the kept (non-boilerplate) parts."""

    id: str
    text: str
    spans: tuple[tuple[int, int], ...]
    title: str | None = None
    outlet: str | None = None
    date: str | None = None  # ISO yyyy-mm-dd when known
    author: str | None = None
    url: str | None = None
    source: str | None = None  # file the article came from
    content_hash: str

    @property
    def clean_text(self) -> str:
        return "\n\n".join(self.text[a:b] for a, b in self.spans)


class Chunk(Record):
    """A passage of an article: ``text == article.text[start:end]``."""

    id: str
    article_id: str
    index: int
    start: int
    end: int
    text: str
    title: str | None = None
    outlet: str | None = None
    date: str | None = None
    author: str | None = None


class Context(Record):
    """A retrieved passage, numbered ``n`` as shown to the model and the user."""

    n: int
    chunk_id: str
    article_id: str
    text: str
    score: float
    title: str | None = None
    outlet: str | None = None
    date: str | None = None
    author: str | None = None
    start: int = 0  # offset of the passage in its article's original text
    also_reported_by: tuple[str, ...] = ()  # article ids whose near-copy of this passage was dropped


class Citation(Record):
    """A citation [n] in the answer, with the exact sentence(s) of the passage it rests on: ``quotes`` holds
    one per answer sentence citing it (the same sentence once), in the answer's order; ``quote`` is the first."""

    n: int
    article_id: str
    chunk_id: str
    title: str | None = None
    outlet: str | None = None
    date: str | None = None
    quote: str
    quotes: tuple[str, ...] = ()  # given none, the one ``quote``
    also_reported_by: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _quotes_hold_the_quote(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("quotes") and data.get("quote"):
            return {**data, "quotes": (data["quote"],)}
        return data


Verdict = Literal["supported", "unsupported", "uncited"]


class Claim(Record):
    """One sentence of the answer, the passages it cites and whether they support it."""

    text: str
    cited: tuple[int, ...] = ()
    verdict: Verdict = "supported"
    score: float | None = None  # judge's P(supported) when the model judged it
    reason: str | None = None


class Answer(Record):
    """What the chain returns: the answer always carries its evidence."""

    question: str
    standalone_question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    contexts: tuple[Context, ...] = ()
    claims: tuple[Claim, ...] = ()
    dropped_citations: tuple[int, ...] = ()  # [n] markers the model wrote that matched no passage
    draft: str | None = None  # the model's text when verification withheld it (abstained)
    timings: dict[str, float] = Field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The ``rag ask --json`` shape (see DESIGN.md), plus claims and each citation's ``quotes``."""
        return {
            "answer": self.answer,
            "abstained": self.abstained,
            "standalone_question": self.standalone_question,
            "citations": [
                c.model_dump(include={"n", "article_id", "chunk_id", "title", "outlet", "date", "quote", "quotes"})
                for c in self.citations
            ],
            "contexts": [
                c.model_dump(include={"chunk_id", "article_id", "text", "score"}) for c in self.contexts
            ],
            "claims": [c.model_dump() for c in self.claims],
            "timings": self.timings,
        }


class IngestReport(Record):
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    duplicates: int = 0
    rejected: tuple[str, ...] = ()  # one line per rejected file: "path: reason"
    chunks_embedded: int = 0


class Retrieved(Record):
    """Stream event: retrieval finished (sources can be shown before the answer streams)."""

    standalone_question: str
    contexts: tuple[Context, ...]


class Token(Record):
    """Stream event: a piece of the answer as the model writes it."""

    text: str


Event = Retrieved | Token | Answer
