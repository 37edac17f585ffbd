"""The Gradio chat UI: ``create_app(chain)`` builds the Blocks (``ui.launch.serve`` launches it).

Handlers are plain module-level functions over a ``Chain`` and a per-browser ``Session`` (kept in
``gr.State``), so tests call them directly and several browser sessions never share a history.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from rag.chain import Chain
from rag.errors import RagError, validate_question
from rag.loaders import EXTENSIONS
from rag.models import Answer, Citation, Context, Retrieved, Token
from rag.prompts import NOT_FOUND
from ui import render
from ui.library import LIBRARY_HEADERS, ingest_uploads, library_rows, one_line

__all__ = ["EXAMPLES", "Session", "Step", "create_app", "respond", "show_source", "upload_files"]

log = logging.getLogger(__name__)
EXAMPLES = [
    "How many deportees did Kosovo agree to take?",
    "When did Kosovo declare independence?",
    "Where will the Danish prisoners serve their sentences?",
]
Message = dict[str, str]


@dataclass(frozen=True)
class Session:
    """One browser session's conversation: what the chain sees and what the chat shows."""

    # (standalone question, answer text) pairs for follow-ups: the question as it was searched for, so a
    # follow-up to a follow-up ("and when?" after "who said that?") still names what the talk is about
    history: tuple[tuple[str, str], ...] = ()
    messages: tuple[Message, ...] = ()  # the chatbot's messages (rendered HTML)
    contexts: tuple[Context, ...] = ()  # passages of the latest turn
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class Step:
    """One UI update while answering; ``sources`` None means the panel is unchanged."""

    session: Session
    sources: str | None = None
    choices: list[tuple[str, str]] | None = None
    answer: Answer | None = None


def _names(chain: Chain, contexts: Sequence[Context]) -> dict[str, str]:
    """Display names for the article ids in 'also reported by'."""
    out: dict[str, str] = {}
    for aid in {a for c in contexts for a in c.also_reported_by}:
        art = chain.store.article(aid)
        out[aid] = render.source_label(art.outlet, art.date, art.title, aid) if art else aid
    return out


def _choices(contexts: Sequence[Context]) -> list[tuple[str, str]]:
    return [(f"[{c.n}] " + render.source_label(c.outlet, c.date, c.title, c.article_id), str(c.n))
            for c in contexts]


# ---- chat ----------------------------------------------------------------------------------
NO_ARTICLES = "there are no articles in this collection yet: add some in the Library tab, or run `rag ingest`"


def respond(chain: Chain, question: str, session: Session) -> Iterator[Step]:
    """Stream one turn: sources as soon as retrieval is done, then tokens, then the checked answer."""
    question = (question or "").strip()
    if not question:
        yield Step(session)
        return
    base = (*session.messages, {"role": "user", "content": render.question_html(question)})

    def show(bot: str, **changes: Any) -> Session:
        return replace(session, messages=(*base, {"role": "assistant", "content": bot}), **changes)

    try:  # a question refused as it stands leaves the sources panel (and what it opens) as it was
        validate_question(question, chain.settings.max_question_chars)
        empty = not chain.store.has_articles()
    except RagError as exc:
        yield Step(show(render.error_html(one_line(exc))))
        return
    if empty:  # every answer would be "The articles don't say", which is not why
        yield Step(show(render.error_html(NO_ARTICLES)))
        return
    yield Step(show(render.pending_html()), sources=render.sources_html((), note="searching the articles…"),
               choices=[])
    detail, text = "", ""
    found: tuple[Context, ...] = ()  # the passages the panel shows, once retrieval is done
    try:
        for event in chain.stream(question, list(session.history)):
            if isinstance(event, Retrieved):
                found = event.contexts
                detail = render.standalone_line(question, event.standalone_question)
                note = "" if event.contexts else "no passage matched this question"
                yield Step(show(render.pending_html(detail, "writing the answer…"), contexts=event.contexts),
                           sources=render.sources_html(event.contexts, (), _names(chain, event.contexts), note),
                           choices=_choices(event.contexts))
            elif isinstance(event, Token):
                text += event.text
                if NOT_FOUND.startswith(text.strip()) or text.strip().startswith(NOT_FOUND):
                    continue  # the model's refusal word is not an answer: wait for the final message
                yield Step(show(render.streaming_html(text, detail)))
            elif isinstance(event, Answer):
                final = show(render.answer_html(event, detail), contexts=event.contexts, citations=event.citations,
                             history=(*session.history, (event.standalone_question, event.answer)))
                note = "None of these passages answers the question." if event.abstained else ""
                yield Step(final, sources=render.sources_html(event.contexts, event.citations,
                                                              _names(chain, event.contexts), note),
                           choices=_choices(event.contexts), answer=event)
    except RagError as exc:
        yield _failed(chain, show, one_line(exc), found)
    except Exception as exc:  # never show a traceback in the chat; keep it in the server log
        log.exception("chat turn failed")
        yield _failed(chain, show, f"{type(exc).__name__}: {one_line(exc)}", found)


def _failed(chain: Chain, show: Callable[..., Session], message: str, found: tuple[Context, ...]) -> Step:
    """A turn that failed after the sources panel was emptied for it: the panel shows what was found (or says
    nothing was), and the session holds the same passages, so a card or the dropdown opens the article it
    names (they opened the previous turn's source of that number)."""
    try:
        names = _names(chain, found)
    except Exception:  # the store may be what failed: the cards still show their passages
        names = {}
    note = "the answer failed; these passages were found" if found else "no sources: the question failed"
    return Step(show(render.error_html(message), contexts=found, citations=()),
                sources=render.sources_html(found, (), names, note), choices=_choices(found))


def show_source(chain: Chain, session: Session, n: str | int | None) -> str:
    """The full article behind source ``n`` of the latest turn, its passage highlighted in place."""
    if n in (None, ""):
        return ""
    text = str(n).strip()
    if not text.isdecimal() or len(text) > 9:  # int() refuses over 4,300 digits
        return render.error_html(f"source {text[:40]!r} is not a source number")
    try:
        num = int(text)
        ctx = next((c for c in session.contexts if c.n == num), None)
        if ctx is None:
            return ""
        article = chain.store.article(ctx.article_id)
        if article is None:
            return render.article_missing_html(ctx.article_id)
        return render.article_html(article, ctx, next((c for c in session.citations if c.n == num), None))
    except RagError as exc:
        return render.error_html(one_line(exc))


def status_line(chain: Chain) -> str:
    try:
        return render.status_text(chain.describe())
    except Exception as exc:  # the status line must never break the page
        return f"error: {one_line(exc)}"


# ---- library -------------------------------------------------------------------------------
def upload_files(chain: Chain, paths: Sequence[str] | str | None) -> tuple[str, list[list[str | int]], str]:
    """Gradio handler: per-file results, the refreshed library table and status line."""
    if isinstance(paths, str):
        paths = [paths]
    files = [(Path(p), Path(p).name) for p in paths or []]
    results = ingest_uploads(chain, files)
    return render.upload_results_html(results), library_rows(chain), status_line(chain)


# ---- the app -------------------------------------------------------------------------------
def _step_outputs(step: Step) -> tuple[Any, ...]:
    sources = gr.skip() if step.sources is None else step.sources
    choices = gr.skip() if step.choices is None else gr.Dropdown(choices=step.choices, value=None)
    article = gr.skip() if step.sources is None else ""
    return list(step.session.messages), step.session, sources, choices, article


_CARD_JS = """
element.addEventListener('click', (e) => {
  const card = e.target.closest('[data-n]');
  if (card) trigger('click', {n: card.dataset.n});
});
"""

_SCROLL_TO_PASSAGE_JS = """
new MutationObserver(() => {
  const box = element.querySelector('.article-text');
  const mark = element.querySelector('mark.passage');
  if (box && mark) box.scrollTop = Math.max(0, mark.offsetTop - 40);
}).observe(element, {childList: true, subtree: true});
"""


def create_app(chain: Chain, title: str = "News Q&A") -> gr.Blocks:
    """The chat UI over ``chain`` (not launched: see ``serve``)."""
    demo = gr.Blocks(title=title, analytics_enabled=False)
    with demo:
        session = gr.State(Session(), time_to_live=3600)  # API clients never close their sessions
        gr.Markdown(f"## {render.esc(title)}\nAnswers come only from the ingested articles, with"
                    " numbered citations you can check.")
        status = gr.Markdown(status_line(chain), elem_id="status")
        with gr.Tab("Chat", elem_id="chat-tab"), gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(elem_id="chat", height=520, label="Chat", latex_delimiters=[],
                                     feedback_options=None, buttons=["copy"])
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask about the articles…", show_label=False,
                                          elem_id="question", scale=5, max_lines=4, submit_btn=False)
                    send = gr.Button("Ask", variant="primary", elem_id="send", scale=1)
                    clear = gr.Button("Clear conversation", elem_id="clear", scale=1)
                gr.Examples(EXAMPLES, inputs=[question], label="Examples")
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(render.sources_html(()), elem_id="sources", js_on_load=_CARD_JS)
                source_select = gr.Dropdown(choices=[], value=None, label="Show full article for source",
                                            elem_id="source-select", interactive=True)
                article_view = gr.HTML("", elem_id="article-view", js_on_load=_SCROLL_TO_PASSAGE_JS)
        with gr.Tab("Library", elem_id="library-tab"):
            library = gr.Dataframe(library_rows(chain), headers=LIBRARY_HEADERS, interactive=False,
                                   elem_id="library", wrap=True,
                                   column_widths=["22%", "42%", "14%", "12%", "10%"])
            upload = gr.File(label=f"Add articles ({', '.join(EXTENSIONS)})", file_count="multiple",
                             file_types=list(EXTENSIONS), elem_id="upload")
            upload_result = gr.HTML("", elem_id="upload-result")

        def on_ask(text: str, state: Session) -> Iterator[tuple[Any, ...]]:
            for i, step in enumerate(respond(chain, text, state)):
                yield ("" if i == 0 else gr.skip()), *_step_outputs(step)

        def on_clear() -> tuple[Any, ...]:
            return [], Session(), render.sources_html(()), gr.Dropdown(choices=[], value=None), ""

        def on_card(state: Session, evt: gr.EventData) -> tuple[Any, str]:
            data = getattr(evt, "_data", None) or {}
            n = str(data.get("n", "")) if isinstance(data, dict) else ""
            return (n or gr.skip()), show_source(chain, state, n)

        chat_outputs = [chatbot, session, sources, source_select, article_view]
        asks: list[dict[str, Any]] = [
            trigger(on_ask, [question, session], [question, *chat_outputs], concurrency_id="chain", concurrency_limit=1)
            for trigger in (question.submit, send.click)]
        # clearing stops an answer under way (or waiting its turn): its next step would write the cleared
        # conversation back, and the next question would be a follow-up to it
        clear.click(on_clear, None, chat_outputs, concurrency_limit=None, cancels=asks)
        chatbot.clear(on_clear, None, chat_outputs, concurrency_limit=None, cancels=asks)  # the chat's trash icon
        source_select.input(lambda state, n: show_source(chain, state, n), [session, source_select], article_view,
                            concurrency_limit=None)
        sources.click(on_card, [session], [source_select, article_view], concurrency_limit=None)
        upload.upload(lambda files: upload_files(chain, files), upload, [upload_result, library, status],
                      concurrency_id="chain", concurrency_limit=1)
        demo.load(lambda: (status_line(chain), library_rows(chain)), None, [status, library],
                  concurrency_limit=None)
    return demo
