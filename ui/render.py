"""HTML for the chat UI. Every piece of article or answer text goes through ``esc`` first."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rag.models import Answer, Article, Citation, Claim, Context
from rag.verify import quote_score

_MARKER = re.compile(r"\[(\d+)\]")

CSS = """
.answer .cite, .source-card .num { font-weight: 600; color: var(--color-accent); }
.answer .unsupported { text-decoration: underline wavy #d97706; text-underline-offset: 3px; }
.answer .reason, .answer .withheld { font-size: 0.85em; color: #b45309; }
.abstained { border-left: 4px solid #6b7280; padding-left: 0.6em; font-style: italic; }
.abstained .badge { font-style: normal; font-size: 0.75em; font-weight: 600; text-transform: uppercase;
  border: 1px solid #6b7280; border-radius: 4px; padding: 0 0.35em; margin-right: 0.3em; }
.error .icon { margin-right: 0.3em; }
.standalone { font-size: 0.8em; opacity: 0.7; margin-bottom: 0.3em; }
.error { color: #b91c1c; }
.pending { opacity: 0.6; font-style: italic; }
#sources .source-card { border: 1px solid var(--border-color-primary); border-radius: 6px;
  padding: 0.5em 0.7em; margin-bottom: 0.5em; cursor: pointer; }
#sources .source-card.uncited { opacity: 0.65; }
#sources .source-card:hover { border-color: var(--color-accent); }
#sources .meta, #article-view .meta { font-size: 0.8em; opacity: 0.75; }
#sources .passage { font-size: 0.9em; margin-top: 0.3em; white-space: pre-line; }
#sources .also { font-size: 0.8em; margin-top: 0.3em; }
#article-view .article-text { position: relative; white-space: pre-wrap; font-size: 0.9em;
  max-height: 32em; overflow-y: auto; }
#article-view mark.passage { background: #fef3c7; }
#article-view mark.quote, #sources mark { background: #fde047; }
#status { font-size: 0.85em; opacity: 0.8; }
"""


# Run once as the page loads (``launch(js=...)``). A chat message is HTML made here, and the chat's "Copy
# message" button copied that HTML ('<div class="answer">… <span class="cite" title=…>[1]</span>'): a message
# of ours is copied as its text instead, without the "searched for" line, the "no answer" badge or the ⚠ icon.
JS = r"""
() => {
  const ours = /^<div class="(answer|error|question)[ "]/;
  const plain = (html) => {
    const doc = new DOMParser().parseFromString(html, 'text/html');
    doc.querySelectorAll('.standalone, .pending, .badge, .icon').forEach((e) => e.remove());
    doc.querySelectorAll('br').forEach((e) => e.replaceWith('\n'));
    return doc.body.textContent.replace(/[ \t]+/g, ' ').replace(/ *\n */g, '\n').trim();
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (v) => write(typeof v === 'string' && ours.test(v) ? plain(v) : v);
  }
  // without a secure context (plain http to another host) the button copies a hidden textarea instead
  document.addEventListener('copy', (e) => {
    const t = e.target;
    if (t instanceof HTMLTextAreaElement && ours.test(t.value) && e.clipboardData) {
      e.clipboardData.setData('text/plain', plain(t.value));
      e.preventDefault();
    }
  }, true);
}
"""


def esc(text: str | None) -> str:
    """HTML-escape text (quotes included); None becomes ''."""
    return html.escape(text or "", quote=True)


def _lines(text: str) -> str:
    """Escaped text on one line of HTML (the chat's markdown would otherwise read blank lines)."""
    return "<br>".join(esc(line) for line in text.strip().splitlines())


def highlight(text: str, quotes: Sequence[str] = (), cls: str = "quote") -> str:
    """``text`` escaped, with the first occurrence of each of ``quotes`` wrapped in <mark> (one that overlaps
    an earlier mark is left plain)."""
    spans = sorted(((at, at + len(q)) for q in quotes if q and (at := text.find(q)) >= 0),
                   key=lambda span: (span[0], -span[1]))  # of two starting together, the longer
    out, pos = [], 0
    for start, end in spans:
        if start >= pos:
            out += [esc(text[pos:start]), f'<mark class="{cls}">{esc(text[start:end])}</mark>']
            pos = end
    return "".join(out) + esc(text[pos:])


def source_label(outlet: str | None, date: str | None, title: str | None, article_id: str) -> str:
    """Plain-text one-liner naming a source (escape it before putting it in HTML)."""
    return " · ".join(x for x in (outlet, date, title) if x) or article_id


# ---- chat messages -------------------------------------------------------------------------
def standalone_line(question: str, standalone: str) -> str:
    """A small line showing the rewritten question, or '' when the question was used as asked."""
    if " ".join(standalone.split()).lower() == " ".join(question.split()).lower():
        return ""
    return f'<div class="standalone">searched for: {esc(standalone)}</div>'


def question_html(question: str) -> str:
    """The user's message as typed: HTML, so the chat's markdown does not read "2*3*4" as emphasis or
    "# Kosovo" as a heading."""
    return f'<div class="question">{_lines(question)}</div>'


def pending_html(detail: str = "", note: str = "searching the articles…") -> str:
    return f'<div class="answer">{detail}<span class="pending">{esc(note)}</span></div>'


def streaming_html(text: str, detail: str = "") -> str:
    note = '<span class="pending">draft: each sentence is checked against its source before it is final</span>'
    return f'<div class="answer streaming">{detail}{_lines(text)}{note}</div>'


def error_html(message: str) -> str:
    return f'<div class="error"><span class="icon">⚠</span>error: {esc(message)}</div>'


def _cited(text: str, citations: Mapping[int, Citation]) -> str:
    """``text`` escaped, each [n] styled and, where n is a citation, titled with the sentence of its passage
    that the text rests on (hover to read it)."""
    def marker(m: re.Match[str]) -> str:
        cit = citations.get(int(m[1]))
        if cit is None:
            return f'<span class="cite">[{m[1]}]</span>'
        quote = max(cit.quotes, key=lambda q: quote_score(text, q))  # the one the chain chose for it
        tip = f"{source_label(cit.outlet, cit.date, None, cit.article_id)}: “{quote}”"
        return f'<span class="cite" title="{esc(tip)}">[{m[1]}]</span>'
    return _MARKER.sub(marker, _lines(text))


def _claim_html(claim: Claim, citations: Mapping[int, Citation]) -> str:
    body = _cited(claim.text, citations)
    if claim.verdict == "supported":
        return body
    reason = claim.reason or ("no passage cited" if claim.verdict == "uncited" else "not supported by its source")
    return (f'<span class="unsupported" title="{esc(reason)}">{body}</span>'
            f' <span class="reason">(⚠ {esc(claim.verdict)}: {esc(reason)})</span>')


def answer_html(answer: Answer, detail: str = "") -> str:
    """The final bot message: cited answer, unsupported claims marked; abstentions styled apart. Each [n]
    shows on hover the sentence of source n its sentence rests on."""
    if answer.abstained:
        withheld = ""
        if answer.draft:
            withheld = (f'<div class="withheld">A draft answer was withheld because its sources do not support it:'
                        f' “{esc(answer.draft)}”</div>')
        return (f'<div class="answer abstained">{detail}<span class="badge">no answer</span> '
                f'{_lines(answer.answer)}{withheld}</div>')
    citations = {c.n: c for c in answer.citations}
    if answer.claims:
        body = " ".join(_claim_html(c, citations) for c in answer.claims)
    else:
        body = _cited(answer.answer, citations)
    return f'<div class="answer">{detail}{body}</div>'


# ---- sources panel and article view --------------------------------------------------------
def sources_html(contexts: Sequence[Context], citations: Sequence[Citation] = (),
                 names: Mapping[str, str] | None = None, note: str = "") -> str:
    """Numbered cards, one per retrieved passage; cited ones first-class with the quote highlighted."""
    if not contexts:
        return f'<div class="sources-empty">{esc(note or "Sources appear here when you ask a question.")}</div>'
    names = names or {}
    cited = {c.n: c for c in citations}
    cards = [f'<div class="sources-note">{esc(note)}</div>'] if note else []
    for ctx in sorted(contexts, key=lambda c: (c.n not in cited, c.n) if cited else (0, c.n)):
        cit = cited.get(ctx.n)
        state = "cited" if cit else ("uncited" if cited else "retrieved")
        also = ""
        if ctx.also_reported_by:
            who = ", ".join(esc(names.get(a, a)) for a in ctx.also_reported_by)
            also = f'<div class="also">also reported by: {who}</div>'
        title = esc(ctx.title or ctx.outlet or ctx.article_id)  # the id stays in the meta line
        meta = " · ".join(esc(x) for x in (ctx.outlet if ctx.title else None, ctx.date, ctx.article_id) if x)
        cards.append(
            f'<div class="source-card {state}" data-n="{ctx.n}" title="show the full article">'
            f'<div><span class="num">[{ctx.n}]</span> <strong class="title">{title}</strong></div>'
            f'<div class="meta">{meta}'
            f'{"" if cit or not cited else " · not cited"}</div>'
            f'<div class="passage">{highlight(ctx.text, cit.quotes if cit else ())}</div>{also}</div>')
    return "".join(cards)


def article_html(article: Article, ctx: Context | None = None, citation: Citation | None = None) -> str:
    """The full article text with the passage (and the cited sentences in it) highlighted in place."""
    text = article.text
    head = (f'<h3 class="title">{esc(article.title or article.id)}</h3><div class="meta">'
            + " · ".join(esc(x) for x in (article.outlet, article.date, article.author, article.id) if x)
            + "</div>")
    body = esc(text)
    if ctx is not None:
        start = ctx.start if text[ctx.start:ctx.start + len(ctx.text)] == ctx.text else text.find(ctx.text)
        if start >= 0:
            end = start + len(ctx.text)
            body = (f'{esc(text[:start])}<mark class="passage" id="passage-{ctx.n}">'
                    f'{highlight(ctx.text, citation.quotes if citation else ())}</mark>{esc(text[end:])}')
    return f'{head}<div class="article-text">{body}</div>'


def article_missing_html(article_id: str) -> str:
    return f'<div class="error">article {esc(article_id)} is no longer in the library</div>'


# ---- status and library --------------------------------------------------------------------
def status_text(info: Mapping[str, Any]) -> str:
    return (f"backend: {info.get('backend')} · model: {info.get('model')} · verify: {info.get('verify')}"
            f" · {info.get('articles', 0)} articles · {info.get('chunks', 0)} chunks")


def upload_results_html(lines: Sequence[tuple[str, str, bool]]) -> str:
    """One line per uploaded file: (name, result, ok)."""
    if not lines:
        return ""
    items = "".join(f'<li class="{"ok" if ok else "error"}"><code>{esc(name)}</code>: {esc(result)}</li>'
                    for name, result, ok in lines)
    return f'<ul class="upload-results">{items}</ul>'
