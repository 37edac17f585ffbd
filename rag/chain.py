"""Question (+ history) -> standalone question -> passages -> cited answer, checked in code."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from langchain_core.output_parsers import StrOutputParser

from rag.chunking import sentence_spans
from rag.claims import (
    attach_citations,
    cite,
    clauses,
    clean_citations,
    markers,
    split_claims,
    strip_markers,
)
from rag.conflicts import mentions, wrong_premise
from rag.drafts import citations_of, correction, echoes, in_own_words, repeats, said
from rag.errors import ModelError, RagError, validate_question
from rag.focus import focus
from rag.models import Answer, Claim, Context, Event, Retrieved, Token
from rag.premise import Fix, asked_instead, refused_premise
from rag.prompts import (
    ABSTAIN_TEXT,
    ANSWER_PROMPT,
    REPAIR_PROMPT,
    REWRITE_PROMPT,
    YES_NO_TEXT,
    format_passages,
    labelled,
)
from rag.providers import Backend, get_embeddings, make_backend
from rag.reports import other_reports
from rag.retrieval import Retriever
from rag.settings import Settings, get_settings
from rag.store import Store
from rag.verify import Judge, judge_claims, judge_prompt_p_yes
from rag.yes_no import yes_no_sentence

History = Sequence[tuple[str, str]]

log = logging.getLogger(__name__)


class Chain:
    """The one answering pipeline behind the CLI, the chat UI and the evaluation."""

    def __init__(self, settings: Settings, store: Store, backend: Backend) -> None:
        self.settings, self.store, self.backend = settings, store, backend
        self.retriever = Retriever(store, get_embeddings(settings.embeddings), settings.top_k, settings.candidates,
                                   settings.keyword_weight, settings.per_article)
        p_yes = judge_prompt_p_yes(backend.p_yes) if backend.name != "fake" else None
        self.judge = Judge(p_yes, settings.support_threshold)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, collection: str | None = None, *,
                      repair: bool = False) -> Chain:
        """The chain over the settings' store; ``repair`` (a long-running server) first restores what a killed
        ingest or a lost index left, where a one-off question only warns of it."""
        settings = settings or get_settings()
        store = Store(settings.data_dir, collection or settings.collection, settings.chroma_url)
        try:
            store.check_embeddings(settings.embeddings)
            if repair:
                store.repair()
            else:
                _warn_of_damage(store)
        except BaseException:
            store.close()
            raise
        return cls(settings, store, make_backend(settings))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend.name, "model": self.backend.model, "verify": self.settings.verify,
                "articles": len(self.store.articles()), "chunks": self.store.count_chunks()}

    def ask(self, question: str, history: History = ()) -> Answer:
        answer = None
        for event in self.stream(question, history):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def stream(self, question: str, history: History = ()) -> Iterator[Event]:
        """Yield ``Retrieved`` (sources, before generation), ``Token``s, then the final ``Answer``."""
        question = validate_question(question, self.settings.max_question_chars)
        self.store.check_embeddings(self.settings.embeddings)  # a CLI ingest may have changed them since
        start, timings = time.perf_counter(), {}
        standalone = self._rewrite(question, history)
        timings["rewrite_s"] = time.perf_counter() - start
        contexts = tuple(self.retriever.search(standalone))
        timings["retrieve_s"] = time.perf_counter() - start - timings["rewrite_s"]
        yield Retrieved(standalone_question=standalone, contexts=contexts)
        if not contexts or max(c.score for c in contexts) < self.settings.min_relevance:
            yield self._abstain(question, standalone, contexts, timings, start)
            return
        pieces: list[str] = []
        inputs = {"passages": self._passages(standalone, contexts), "question": standalone}
        for piece in self._generate(ANSWER_PROMPT, inputs):
            if not pieces:
                timings["ttft_s"] = time.perf_counter() - start
            pieces.append(piece)
            yield Token(text=piece)
        timings["generate_s"] = time.perf_counter() - start - timings["rewrite_s"] - timings["retrieve_s"]
        known = " ".join(history[-1]) if history else ""  # the names of the turn a follow-up refers to
        yield self._finish(question, standalone, "".join(pieces), contexts, timings, start, known)

    # ---- steps ---------------------------------------------------------------------------
    def _generate(self, prompt: Any, inputs: dict[str, str], model: Any = None) -> Iterator[str]:
        try:
            yield from (prompt | (model or self.backend.chat) | StrOutputParser()).stream(inputs)
        except RagError:
            raise
        except Exception as exc:  # backend vendors raise their own types: make them one clear line
            raise ModelError(f"{self.backend.name} model failed: {str(exc).splitlines()[0][:200]}") from None

    def _passages(self, question: str, contexts: Sequence[Context]) -> str:
        limit = self.settings.focus_sentences
        return format_passages(focus(question, contexts, self.retriever.embeddings, limit) if limit else contexts)

    def _rewrite(self, question: str, history: History) -> str:
        if not history:
            return question
        previous, answer = history[-1]
        inputs = {"previous": previous, "answer": strip_markers(answer)[:400], "question": question}
        text = "".join(self._generate(REWRITE_PROMPT, inputs, self.backend.rewriter)).strip().splitlines()
        rewritten = text[0].strip(" \"'") if text else ""
        return rewritten if 5 < len(rewritten) < 4 * len(question) + 200 else question

    def _finish(self, question: str, standalone: str, raw: str, contexts: tuple[Context, ...],
                timings: dict[str, float], start: float, known: str = "") -> Answer:
        raw = re.sub(r"^\s*answer:\s*", "", raw.strip(), flags=re.I)
        if not (body := said(raw)):
            return self._unanswered(question, standalone, contexts, timings, start)
        if echoes(body, standalone):
            return self._unanswered(question, standalone, contexts, timings, start, draft=raw)
        verify_start = time.perf_counter()
        claims, dropped = self._claims(body, contexts, standalone)
        if self.settings.verify == "repair" and any(c.verdict != "supported" for c in claims):
            failed = "; ".join(strip_markers(c.text) for c in claims if c.verdict != "supported")
            inputs = {"passages": self._passages(standalone, contexts), "question": standalone, "failed": failed}
            claims, dropped = self._claims("".join(self._generate(REPAIR_PROMPT, inputs)), contexts, standalone)
            claims = [c for c in claims if c.verdict == "supported"]
        timings["verify_s"] = time.perf_counter() - verify_start
        drafted = claims
        answer = " ".join(c.text for c in claims)
        claims = list({c.text: c for c in (in_own_words(c, contexts, standalone, answer, known)
                                           for c in claims)}.values())
        supported = [c for c in claims if c.verdict == "supported"]
        checked = self.settings.verify != "off"
        if checked and len(supported) < len(claims) and (fix := wrong_premise(standalone, contexts)):
            # a false premise: correct it from the passage; the sentences that repeat it go
            value, _, sentence = fix
            kept = [c for c in claims if not mentions(c.text, value) and not repeats(c.text, sentence)] \
                if supported else []
            return self._answer(question, standalone, [correction(fix), *kept], contexts, timings, start, draft=raw)
        if checked and not supported:
            return self._unanswered(question, standalone, contexts, timings, start, draft=raw)
        # outlets disagree: say so and cite each side, quoting the other side's passage
        # (also those the drafted sentences set against other reports: "50 is the maximum" quoted in own words)
        sides = (claims,) if drafted == claims else (claims, drafted)
        claims += other_reports(standalone, sides, contexts, self.judge if checked else None,
                                self.settings.other_report_threshold)
        return self._answer(question, standalone, claims, contexts, timings, start, dropped=dropped)

    def _answer(self, question: str, standalone: str, claims: Sequence[Claim], contexts: tuple[Context, ...],
                timings: dict[str, float], start: float, dropped: tuple[int, ...] = (),
                draft: str | None = None) -> Answer:
        timings["total_s"] = time.perf_counter() - start
        return Answer(question=question, standalone_question=standalone, answer=" ".join(c.text for c in claims),
                      abstained=False, citations=tuple(citations_of(claims, contexts)), contexts=contexts,
                      claims=tuple(claims), dropped_citations=dropped, timings=timings, draft=draft)

    def _claims(self, raw: str, contexts: Sequence[Context], question: str) -> tuple[list[Claim], tuple[int, ...]]:
        text, dropped = clean_citations(raw, {c.n for c in contexts})
        sentences = attach_citations(split_claims(text), contexts)
        judge = self.judge if self.settings.verify != "off" else None
        claims = judge_claims(sentences, contexts, judge, question, self._heading)
        out: list[Claim] = []
        for claim in claims:  # a sentence joining two passages' facts ("..., and it can choose them [3]"):
            parts = clauses(claim.text) if judge and claim.verdict == "unsupported" else [claim.text]
            split = judge_claims([(p, tuple(markers(p))) for p in parts], contexts, judge, question, self._heading) \
                if len(parts) > 1 else []  # its clauses, each judged on its own, stand for it if all hold
            out += split if split and all(c.verdict == "supported" for c in split) else [claim]
        return out, dropped

    def _unanswered(self, question: str, standalone: str, contexts: tuple[Context, ...], timings: dict[str, float],
                    start: float, draft: str | None = None) -> Answer:
        """No answer the passages support: a question taking a false premise as given gets it corrected
        (``premise.refused_premise``: "Why did Kosovo agree to take 75 deportees?": "... at least 50 ..."); a yes/no
        question gets the sentence most about it, quoted (the model reads a yes/no question as one the passages
        do not answer), found by words, by meaning or by the judge; others abstain."""
        checked = self.settings.verify != "off"
        if checked and (fix := refused_premise(standalone, contexts, self._similarity)):
            claims = [correction(fix), *self._asked_instead(standalone, fix, contexts)]
            return self._answer(question, standalone, claims, contexts, timings, start, draft=draft)
        judged = checked and self.judge.p_yes is not None
        says_yes = (lambda q, c: self.judge.says_yes(q, labelled(c))) if judged else None
        if found := yes_no_sentence(standalone, contexts, self._similarity, says_yes):
            ctx, sentence = found
            quote = Claim(text=f"{YES_NO_TEXT} {cite(sentence, ctx.n)}", cited=(ctx.n,), reason="quoted")
            return self._answer(question, standalone, [quote], contexts, timings, start, draft=draft)
        return self._abstain(question, standalone, contexts, timings, start, draft)

    def _asked_instead(self, question: str, fix: Fix, contexts: tuple[Context, ...]) -> list[Claim]:
        """After a refused question's premise is corrected, the question asked again of what the passage says
        instead ("How much is Denmark paying ...?" for "... Sweden ..."): the supported sentences of that answer
        that neither repeat the quoted sentence nor name the wrong value; none if the model will not answer."""
        if (asked := asked_instead(question, fix)) is None:
            return []
        inputs = {"passages": self._passages(asked, contexts), "question": asked}
        body = said("".join(self._generate(ANSWER_PROMPT, inputs)))
        if not body or echoes(body, asked):
            return []
        claims, _ = self._claims(body, contexts, asked)
        value, _, sentence = fix
        return [c for c in claims if c.verdict == "supported" and not repeats(c.text, sentence)
                and not mentions(c.text, value)]

    def _heading(self, ctx: Context) -> str:
        """The title and first sentence of the passage's article: where a story names what its later
        passages call "the crossing" or "the venue"."""
        if (article := self.store.article(ctx.article_id)) is None:
            return ""
        # the first sentence of the first kept span: the article can be megabytes, and this runs per failed claim
        spans = sentence_spans(article.text, *article.spans[0]) if article.spans else []
        first = next((article.text[a:b] for a, b in spans), "")
        return " ".join(f"{article.title.rstrip('.')}. {first}".split() if article.title else first.split())

    def _similarity(self, text: str, others: list[str]) -> list[float]:
        """Cosine of ``text`` to each of ``others`` in the retriever's embedding space."""
        embeddings = self.retriever.embeddings
        vector = np.asarray(embeddings.embed_query(text))
        return [float(np.asarray(v) @ vector) for v in embeddings.embed_documents(others)]

    def _abstain(self, question: str, standalone: str, contexts: tuple[Context, ...], timings: dict[str, float],
                 start: float, draft: str | None = None) -> Answer:
        timings["total_s"] = time.perf_counter() - start
        return Answer(question=question, standalone_question=standalone, answer=ABSTAIN_TEXT, abstained=True,
                      contexts=contexts, timings=timings, draft=draft)


def _warn_of_damage(store: Store) -> None:
    """What a one-off question only warns of (``rag ingest`` repairs it); not while an ingest is under way,
    as its changes look the same until they are done."""
    with store.write_lock(wait=False) as idle:
        if not idle:
            return
        if (missing := store.count_passages() - store.count_chunks()) > 0:  # a lost index: answers would change
            log.warning("warning: %d passages have no vector (the vector index was lost or damaged), so search"
                        " finds them by keywords only; run `rag ingest` to restore them", missing)
        elif not store.in_step():
            log.warning("warning: the vector index is out of step with the article database (a change was cut"
                        " short, or another backend wrote last), so search may find older versions of passages;"
                        " run `rag ingest` to bring it in step")
