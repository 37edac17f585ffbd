"""The chat UI's handlers, called directly (offline, fake models)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest

from rag import cli
from rag.chain import Chain
from rag.errors import ModelError
from rag.models import Answer, Citation, Claim, Event
from rag.prompts import ABSTAIN_TEXT
from rag.providers import make_backend
from rag.settings import Settings, get_settings
from rag.store import EMBEDDINGS_KEY, Store
from ui import app, launch, render
from ui.app import Session, respond, show_source
from ui.library import _for_user, ingest_uploads, library_rows, sanitize_filename

from .conftest import SEEDS, fake_settings

DEPORTEES = "How many deportees did Kosovo agree to take?"
SCRIPT_ARTICLE = ("Zembla Harbour Festival Report\n\n"
                  "The zembla harbour festival opened with <script>alert(1)</script> fireworks over the quay.\n\n"
                  "Organisers said the zembla harbour festival drew twelve thousand visitors on Saturday.\n")


def _last_bot(session: Session) -> str:
    assert session.messages[-1]["role"] == "assistant"
    return session.messages[-1]["content"]


def test_create_app_builds_blocks_without_launching(chain: Chain) -> None:
    demo = app.create_app(chain)
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"chat", "question", "sources", "source-select", "article-view", "library", "upload", "status",
            "clear"} <= ids


def test_stream_shows_sources_before_the_answer_then_replaces_the_streamed_text(chain: Chain) -> None:
    steps = list(respond(chain, DEPORTEES, Session()))
    first_cards = next(i for i, s in enumerate(steps) if s.sources and "source-card" in s.sources)
    streaming = [i for i, s in enumerate(steps) if "streaming" in _last_bot(s.session)]
    final = next(i for i, s in enumerate(steps) if s.answer is not None)
    assert streaming and first_cards < streaming[0] < final == len(steps) - 1
    last = steps[-1]
    assert last.answer is not None and not last.answer.abstained
    bot = _last_bot(last.session)
    assert "streaming" not in bot and '<span class="cite" title="' in bot and "50" in bot
    assert last.sources is not None and "<mark" in last.sources and 'class="source-card cited"' in last.sources
    assert last.session.history == ((DEPORTEES, last.answer.answer),)  # no history: searched as asked
    assert last.session.messages[0] == {"role": "user", "content": f'<div class="question">{DEPORTEES}</div>'}
    assert last.choices and last.choices[0][1] == str(last.session.contexts[0].n)


def test_follow_up_passes_history_and_shows_the_rewritten_question(chain: Chain) -> None:
    first = list(respond(chain, DEPORTEES, Session()))[-1].session
    second = list(respond(chain, "Where will they serve their sentences?", first))[-1].session
    assert len(second.history) == 2 and len(second.messages) == 4
    assert '<div class="standalone">searched for:' in _last_bot(second)
    # the first turn stays as it was; a fresh session is independent
    assert second.messages[:2] == first.messages and Session().history == ()


def test_source_selection_shows_the_full_article_with_the_passage_in_place(chain: Chain) -> None:
    session = list(respond(chain, DEPORTEES, Session()))[-1].session
    cited = session.citations[0]
    view = show_source(chain, session, str(cited.n))
    assert '<mark class="passage"' in view and f'<mark class="quote">{render.esc(cited.quote)}</mark>' in view
    assert show_source(chain, session, None) == "" and show_source(chain, session, "99") == ""
    assert render.esc("source 'abc' is not a source number") in show_source(chain, session, "abc")  # not int()'s
    assert "is not a source number" in show_source(chain, session, "9" * 5000)  # int() raised ValueError


def test_every_quote_of_a_citation_is_marked_once() -> None:
    text = "Alpha said one. Beta said two. Gamma said three."
    marked = render.highlight(text, ("Gamma said three.", "Alpha said one.", "said one", "missing"))
    assert marked == ('<mark class="quote">Alpha said one.</mark> Beta said two. '
                      '<mark class="quote">Gamma said three.</mark>')  # the overlapping and absent ones: no mark
    assert render.highlight("a < b", ()) == "a &lt; b"
    assert render.highlight(text, ("Alpha", "Alpha said one.")) == (
        '<mark class="quote">Alpha said one.</mark> Beta said two. Gamma said three.')


def test_abstention_is_styled_apart(chain: Chain) -> None:
    last = list(respond(chain, "What is the capital of Australia?", Session()))[-1]
    assert last.answer is not None and last.answer.abstained
    bot = _last_bot(last.session)
    assert 'class="answer abstained"' in bot and render.esc(ABSTAIN_TEXT) in bot
    assert last.sources is not None and "None of these passages answers the question." in last.sources


def test_unsupported_claims_are_marked_with_their_reason() -> None:
    answer = Answer(question="q", standalone_question="q", answer="A [1]. B [2].", abstained=False, claims=(
        Claim(text="A [1].", cited=(1,)),
        Claim(text="B <b>x</b> [2].", cited=(2,), verdict="unsupported", reason="passage 2 does not say B")))
    out = render.answer_html(answer)
    assert '<span class="unsupported" title="passage 2 does not say B">' in out
    assert "passage 2 does not say B)" in out and "&lt;b&gt;x&lt;/b&gt;" in out and "<b>" not in out
    withheld = render.answer_html(answer.model_copy(update={"abstained": True, "draft": "<i>guess</i>"}))
    assert "abstained" in withheld and "&lt;i&gt;guess&lt;/i&gt;" in withheld


def test_each_marker_shows_on_hover_the_sentence_its_sentence_rests_on() -> None:
    citation = Citation(n=1, article_id="a1", chunk_id="a1@0", outlet="Daily <News>", date="2025-06-13",
                        quote="Denmark signed a deal.", quotes=("Denmark signed a deal.", "It is worth $217 million."))
    answer = Answer(question="q", standalone_question="q", answer="x", abstained=False, citations=(citation,),
                    claims=(Claim(text="Denmark signed a deal [1].", cited=(1,)),
                            Claim(text="$217 million [1] [2].", cited=(1,))))
    out = render.answer_html(answer)
    assert out.count('<span class="cite" title="Daily &lt;News&gt; · 2025-06-13: “') == 2
    assert "“Denmark signed a deal.”\">[1]</span>" in out and "“It is worth $217 million.”\">[1]</span>" in out
    assert '<span class="cite">[2]</span>' in out  # no citation 2: a marker without a sentence


def test_html_in_an_article_is_escaped_everywhere(chain: Chain, tmp_path: Path) -> None:
    src = tmp_path / "festival.txt"
    src.write_text(SCRIPT_ARTICLE)
    assert ingest_uploads(chain, [(src, "festival.txt")])[0][2]
    last = list(respond(chain, "What opened the zembla harbour festival?", Session()))[-1]
    texts = [last.sources or "", _last_bot(last.session),
             *(show_source(chain, last.session, str(c.n)) for c in last.session.contexts)]
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in t for t in texts)
    assert not any("<script" in t for t in texts)
    # the question itself is escaped in the user bubble
    turn = list(respond(chain, "<img src=x onerror=alert(1)> zembla?", Session()))[-1].session
    assert "<img" not in turn.messages[0]["content"]


@pytest.mark.parametrize(("client_name", "saved"), [
    ("../../evil.txt", "evil.txt"),
    ("..\\..\\evil.md", "evil.md"),
    ("/etc/passwd", "passwd"),
    ("новости.txt", "новости.txt"),
    ("समाचार.txt", "समाचार.txt"),  # its vowel signs are marks, not letters
    ("ข่าว.txt", "ข่าว.txt"),
    ("新" * 90 + ".txt", "新{33}-[0-9a-f]{8}\\.txt"),  # 100 bytes of stem at most: names over 255 bytes fail
    ("a.TXT", r"a-[0-9a-f]{8}\.txt"),
    (".hidden.txt", r"hidden-[0-9a-f]{8}\.txt"),
    ("a b<c>;.TXT", r"a_b_c-[0-9a-f]{8}\.txt"),
    ("manifest.jsonl", "upload_manifest.jsonl"),
    ("..", "upload-[0-9a-f]{8}"),
])
def test_sanitize_filename(client_name: str, saved: str) -> None:
    assert re.fullmatch(saved, sanitize_filename(client_name))


def test_different_client_names_never_share_a_saved_name(chain: Chain, tmp_path: Path) -> None:
    names = ["新闻.txt", "новости.txt", "report (1).txt", "report_1.txt", "report 1.txt", "a<b.txt", "a>b.txt",
             "A.txt", "a.txt", "a.TXT", "ａ.txt"]
    assert len({sanitize_filename(n) for n in names}) == len(names)
    assert sanitize_filename("report (1).txt") == sanitize_filename("report (1).txt")  # the same name replaces
    results = []
    for i, name in enumerate(names[:4]):
        src = tmp_path / f"src{i}.txt"
        src.write_text(f"Story number {i} says the harbour festival opened with {i + 2} boats on Monday.\n")
        results += ingest_uploads(chain, [(src, name)])
    assert [r[1].split(" (")[0] for r in results] == ["added 1"] * 4
    saved = sorted(p.stem for p in (chain.settings.data_dir / "uploads").iterdir())
    assert len(saved) == 4 and set(saved) <= {row[0] for row in library_rows(chain)}


def test_upload_never_trusts_the_client_file_name(chain: Chain, tmp_path: Path) -> None:
    src = tmp_path / "incoming.txt"
    src.write_text(SCRIPT_ARTICLE)
    [(name, result, ok)] = ingest_uploads(chain, [(src, "../../evil.txt")])
    uploads = chain.settings.data_dir / "uploads"
    assert ok and name == "evil.txt" and result.startswith("added 1"), result
    assert (uploads / "evil.txt").read_text() == SCRIPT_ARTICLE
    assert not (chain.settings.data_dir.parent / "evil.txt").exists()
    assert "evil" in [row[0] for row in library_rows(chain)]
    [(_, again, _)] = ingest_uploads(chain, [(src, "../../evil.txt")])
    assert again.startswith("unchanged 1")


def test_upload_rejects_bad_types_big_files_and_bad_content(chain: Chain, tmp_path: Path) -> None:
    exe = tmp_path / "x.exe"
    exe.write_text("hello")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    small = Chain(fake_settings(chain.settings.data_dir, max_file_bytes=10), chain.store, chain.backend)
    big = tmp_path / "big.txt"
    big.write_text("x" * 100)
    results = ingest_uploads(chain, [(exe, "x.exe"), (bad, "bad.jsonl")]) + ingest_uploads(small, [(big, "big.txt")])
    assert [ok for _, _, ok in results] == [False, False, False]
    assert "unsupported file type" in results[0][1]
    assert results[1][1].startswith("rejected: bad.jsonl") and str(tmp_path) not in results[1][1]
    assert "over the 10-byte limit" in results[2][1]
    assert not list((chain.settings.data_dir / "uploads").glob("*"))  # nothing rejected is kept


def test_an_upload_with_a_bad_line_stores_nothing_and_says_so(chain: Chain, tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "u1", "text": "Kosovo agreed to take fifty deportees from the United States."}\nnot json\n')
    [(name, result, ok)] = ingest_uploads(chain, [(feed, "feed.jsonl")])
    assert (name, ok) == ("feed.jsonl", False)
    assert result == "rejected: feed.jsonl:2: invalid JSON (Expecting value) (nothing from this file was stored)"
    assert "u1" not in [row[0] for row in library_rows(chain)]
    assert not list((chain.settings.data_dir / "uploads").iterdir())


def test_a_rejected_re_upload_keeps_the_earlier_file_and_its_articles(chain: Chain, tmp_path: Path) -> None:
    uploads = chain.settings.data_dir / "uploads"
    note = tmp_path / "note.txt"
    note.write_text(SCRIPT_ARTICLE)
    assert ingest_uploads(chain, [(note, "note.txt")])[0][2]
    note.write_text("")
    [(_, result, ok)] = ingest_uploads(chain, [(note, "note.txt")])
    assert not ok and result == ("rejected: note.txt: file is empty (nothing from this file was stored; the earlier"
                                 " note.txt is kept)")
    assert [p.name for p in uploads.iterdir()] == ["note.txt"] and (uploads / "note.txt").read_text() == SCRIPT_ARTICLE
    assert "note" in [row[0] for row in library_rows(chain)]
    feed = tmp_path / "feed.jsonl"  # an accepted re-upload replaces the earlier file, records and all
    recs = [{"id": f"n{i}", "text": f"Story {i} says the river rose {i} metres on Monday."} for i in range(2)]
    feed.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert ingest_uploads(chain, [(feed, "feed.jsonl")])[0][1].startswith("added 2")
    feed.write_text(json.dumps(recs[1]) + "\n")
    assert ingest_uploads(chain, [(feed, "feed.jsonl")])[0][1].startswith("unchanged 1, removed 1")
    assert {"n0", "n1"} & {row[0] for row in library_rows(chain)} == {"n1"}


def test_a_running_chat_refuses_vectors_re_embedded_by_another_ingest(chain: Chain, tmp_path: Path) -> None:
    chain.store.set_state(EMBEDDINGS_KEY, "minilm")  # what `RAG_EMBEDDINGS=minilm rag ingest` leaves beside us
    bot = _last_bot(list(respond(chain, DEPORTEES, Session()))[-1].session)
    assert "were made with the &#x27;minilm&#x27; embeddings, not &#x27;fake&#x27;" in bot
    note, manifest = tmp_path / "note.txt", tmp_path / "manifest.jsonl"
    note.write_text(SCRIPT_ARTICLE)
    manifest.write_text(json.dumps({"id": "note", "outlet": "Harbour Daily"}) + "\n")
    results = ingest_uploads(chain, [(note, "note.txt"), (manifest, "manifest.jsonl")])
    assert [(name, ok) for name, _, ok in results] == [("note.txt", False), ("manifest.jsonl", False)]
    assert results[0][1].startswith("error: the articles were embedded again with other embeddings since this chat")
    assert "note" not in [row[0] for row in library_rows(chain)]
    assert not (chain.settings.data_dir / "uploads").exists()  # no file kept that the store does not hold
    assert chain.store.state(EMBEDDINGS_KEY) == "minilm"  # nothing embedded back behind the other ingest


def test_an_uploaded_manifest_gives_the_uploads_their_metadata(settings: Settings, store: Store, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """The seeds uploaded in the UI had no outlets: manifest.jsonl was renamed and refused as articles."""
    chain = Chain(settings, store, make_backend(settings))
    uploads = settings.data_dir / "uploads"
    outlets = {m["id"]: m["outlet"] for m in map(json.loads, (SEEDS / "manifest.jsonl").read_text().splitlines())}
    files = [(p, p.name) for p in sorted(SEEDS.iterdir())]  # the manifest comes last here
    with caplog.at_level("WARNING", logger="rag"):
        results = ingest_uploads(chain, files)
    # the server log said their metadata was not used, nor were there article files (they came next)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert results[0] == ("manifest.jsonl", "metadata for 5 article(s); 0 uploaded article(s) updated", True)
    assert all(ok for _, _, ok in results) and {r.id: r.outlet for r in store.articles()} == outlets
    # a later manifest changes one outlet: that article is updated, the other entries are kept
    s0 = sorted(outlets)[0]
    later = tmp_path / "manifest.jsonl"
    later.write_text(json.dumps({"id": s0, "outlet": "Renamed Outlet"}) + "\n")
    assert ingest_uploads(chain, [(later, "manifest.jsonl")]) == [
        ("manifest.jsonl", "metadata for 1 article(s); 1 uploaded article(s) updated", True)]
    assert {r.id: r.outlet for r in store.articles()} == {**outlets, s0: "Renamed Outlet"}
    kept = (uploads / "manifest.jsonl").read_text()
    later.write_text('{"id": "x", "outlet": "Y"}\n{oops\n')  # a bad one changes nothing
    assert ingest_uploads(chain, [(later, "manifest.jsonl")]) == [
        ("manifest.jsonl", "rejected: manifest.jsonl:2: invalid JSON (Expecting property name enclosed in double"
                           " quotes) (nothing was changed)", False)]
    assert (uploads / "manifest.jsonl").read_text() == kept and store.article(s0).outlet == "Renamed Outlet"  # type: ignore[union-attr]


def test_an_upload_shows_its_warnings(chain: Chain, tmp_path: Path) -> None:
    """They went only to the server log, under a temporary path: the upload looked clean."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"id": "w1", "text": "The ferry service resumed on Friday after a week of storms.",
                                "source": {"name": "CNN"}}) + "\n")
    [(_, result, ok)] = ingest_uploads(chain, [(feed, "feed.jsonl")])
    assert ok and result == ("added 1 (1 chunks embedded); warning: feed.jsonl:1: field 'source' must be text,"
                             " not a JSON object; it is left out")
    meta = tmp_path / "manifest.jsonl"
    meta.write_text('{"id": "w1", "titel": "Ferry"}\n')
    [(_, result, ok)] = ingest_uploads(chain, [(meta, "manifest.jsonl")])
    assert ok and result == ("metadata for 1 article(s); 0 uploaded article(s) updated; warning: manifest.jsonl:"
                             " unknown field(s) 'titel' (line 1) ignored (known: id, doc_id, title, outlet, date,"
                             " author, url)")


def test_an_upload_cannot_replace_an_article_stored_from_another_file(chain: Chain, tmp_path: Path) -> None:
    seed = sorted(SEEDS.glob("000_*.txt"))[0]
    clash = tmp_path / seed.name
    clash.write_text("A totally different story about Mars rovers landing on the red planet after a long trip.\n")
    before = chain.store.article(seed.stem)
    [(_, result, ok)] = ingest_uploads(chain, [(clash, seed.name)])
    assert not ok and result == (f"rejected: {seed.name}: article id '{seed.stem}' is already stored from "
                                 f"seeds/{seed.name}, a different text (rename the file) (nothing from this"
                                 " file was stored)")
    assert chain.store.article(seed.stem) == before
    assert not list((chain.settings.data_dir / "uploads").iterdir())


def test_chain_errors_become_one_line_in_the_chat(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(question: str, history: object = ()) -> Iterator[Event]:
        raise RuntimeError("boom\nTraceback (most recent call last): ...")
        yield  # pragma: no cover

    def model_down(question: str, history: object = ()) -> Iterator[Event]:
        raise ModelError("local model failed: out of memory")
        yield  # pragma: no cover

    monkeypatch.setattr(chain, "stream", broken)
    bot = _last_bot(list(respond(chain, "anything?", Session()))[-1].session)
    assert "error: RuntimeError: boom" in bot and "Traceback" not in bot
    monkeypatch.setattr(chain, "stream", model_down)
    last = list(respond(chain, "anything?", Session()))[-1].session
    assert "error: local model failed: out of memory" in _last_bot(last) and last.history == ()


def test_too_long_question_is_a_friendly_error(chain: Chain) -> None:
    bot = _last_bot(list(respond(chain, "x" * 5000, Session()))[-1].session)
    assert 'class="error"' in bot and "character limit" in bot


def test_half_an_emoji_in_a_question_is_a_friendly_error(chain: Chain, caplog: pytest.LogCaptureFixture) -> None:
    """A lone "\\ud83d" (a JSON escape from an API client) gave "UnicodeEncodeError: 'utf-8' codec can't
    encode …" in the chat and a traceback in the server's log."""
    bot = _last_bot(list(respond(chain, "zembla \ud83d festival", Session()))[-1].session)
    assert 'class="error"' in bot and "question holds a lone surrogate \\ud83d (half of a character" in bot
    assert "chat turn failed" not in caplog.text


def test_status_line_names_backend_model_and_size(chain: Chain) -> None:
    line = app.status_line(chain)
    assert "backend: fake" in line and "model: fake-extractive" in line and "5 articles" in line


def test_host_checks() -> None:
    assert launch.is_loopback("127.0.0.1") and launch.is_loopback("localhost") and launch.is_loopback("::1")
    assert not launch.is_loopback("0.0.0.0") and not launch.is_loopback("example.org")
    assert launch.check_host("0.0.0.0", has_auth=False, insecure=False)
    assert launch.check_host("0.0.0.0", has_auth=True, insecure=False) is None
    assert launch.check_host("0.0.0.0", has_auth=False, insecure=True) is None
    assert launch.parse_auth("ann:secret") == ("ann", "secret") and launch.parse_auth(None) is None


def test_serve_refuses_a_public_host_without_auth(fake_env: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[object] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.append(kw))
    assert launch.serve(host="0.0.0.0", port=1) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: refusing to serve on non-loopback host 0.0.0.0") and "\n" not in err
    assert not launched


def test_serve_launches_with_auth_queue_and_settings(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_UI_AUTH", "ann:secret")
    get_settings.cache_clear()
    launched: list[dict[str, object]] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.append({**kw, "queue": self._queue}))
    assert launch.serve(host="0.0.0.0", port=1) == 0
    [kw] = launched
    assert kw["auth"] == ("ann", "secret") and kw["server_name"] == "0.0.0.0" and kw["css"] == render.CSS
    assert kw["js"] == render.JS  # "Copy message" copies a message's text, not its HTML
    queue = kw["queue"]
    assert getattr(queue, "max_size", None) == get_settings().ui_queue_size
    assert getattr(queue, "default_concurrency_limit", None) == 1


def test_serve_reports_bad_config_in_one_line(fake_env: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RAG_UI_AUTH", "no-colon")
    get_settings.cache_clear()
    assert launch.serve() == 2
    assert capsys.readouterr().err.strip() == "error: RAG_UI_AUTH must be 'user:password'"


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_serve_rejects_a_bad_port_in_one_line(port: str, fake_env: None, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: None)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", "--port", port])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith("error: argument --port: ") and err.count("\n") == 1, err
    assert "1 to 65535" in err and "Traceback" not in err


def test_a_bracketed_ipv6_address_can_be_listened_on() -> None:
    """`rag serve --host [::1]`, which Gradio serves, was refused: "Name or service not known"."""
    if not socket.has_ipv6 or launch.check_bind("::1", 0) is not None:
        pytest.skip("no IPv6 loopback here")
    assert launch.check_bind("[::1]", 0) is None


def test_serve_says_which_port_is_in_use(fake_env: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    def no_port(self: gr.Blocks, **kw: object) -> None:  # what Gradio raises for any bind failure
        raise OSError(f"Cannot find empty port in range: {kw['server_port']}-{kw['server_port']}. You can ...")

    monkeypatch.setattr(gr.Blocks, "launch", no_port)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert launch.serve(port=port) == 2
    in_use = f"error: port {port} is already in use on 127.0.0.1 (is another server running? pick another --port)"
    assert capsys.readouterr().err.splitlines()[-1:] == [in_use]  # after the empty collection's warning
    assert launch.serve(port=70000) == 2
    assert capsys.readouterr().err == "error: port must be from 1 to 65535, got 70000\n"


def test_an_empty_collection_is_said_at_start_and_in_the_chat(fake_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    """`rag serve` on a new or misspelt collection answered every question "The articles don't say"."""
    launched: list[object] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.append(kw))
    assert launch.serve(port=1) == 0 and launched  # uploads can still fill it: no reason to stop
    err = capsys.readouterr().err
    assert err.startswith("warning: no articles in collection 'articles' in data dir ") and err.count("\n") == 1
    assert err.rstrip().endswith("or add articles in the chat's Library tab"), err
    chain = Chain.from_settings(get_settings())
    [step] = list(respond(chain, DEPORTEES, Session()))
    assert app.NO_ARTICLES in _last_bot(step.session) and "error" in _last_bot(step.session)
    assert step.answer is None and step.session.history == ()
    article = tmp_path / "kosovo.txt"
    article.write_text("Kosovo agreed to take 50 deportees from the United States, its embassy said on Wednesday.\n")
    assert ingest_uploads(chain, [(article, article.name)])[0][2]
    last = list(respond(chain, DEPORTEES, Session()))[-1]
    assert last.answer is not None and not last.answer.abstained and "50" in last.answer.answer


def test_the_models_refusal_word_is_never_streamed_as_an_answer(chain: Chain) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from rag.providers import Backend

    refusing = Chain(chain.settings, chain.store, Backend("scripted", "s", FakeListChatModel(responses=["NOT FOUND"])))
    steps = list(respond(refusing, "What is the population of Kosovo?", Session()))
    shown = [m["content"] for s in steps for m in s.session.messages if m["role"] == "assistant"]
    assert not any("NOT FOUND" in html for html in shown)
    assert "abstained" in _last_bot(steps[-1].session)


def test_upload_messages_name_other_files_by_folder_and_name_only() -> None:
    line = ("/srv/up/a.txt: article id 'x' is already stored from /home/ann/My Documents/seeds/x.txt, a different"
            " text (rename the file)")
    assert _for_user(line, Path("/srv/up/a.txt")) == ("a.txt: article id 'x' is already stored from seeds/x.txt,"
                                                      " a different text (rename the file)")


def test_a_follow_up_to_a_follow_up_keeps_the_topic(chain: Chain) -> None:
    """The history held the question as typed, so "And when?" after "Who said that?" was rewritten from
    "Who said that?" alone: the deportees were forgotten by the third turn."""
    session = Session()
    for question in (DEPORTEES, "Who said that?"):
        session = list(respond(chain, question, session))[-1].session
    assert session.history[-1][0] == f"Who said that? ({DEPORTEES})"  # what was searched for
    last = list(respond(chain, "And how many were there?", session))[-1]
    assert last.answer is not None and "deportees" in last.answer.standalone_question
    assert not last.answer.abstained


def _failing_answers(chain: Chain, monkeypatch: pytest.MonkeyPatch, prompt: object) -> None:
    """The chain's model fails on ``prompt`` (the answer's or the follow-up rewrite's), as a server gone away."""
    generate = chain._generate

    def failing(p: object, inputs: dict[str, str], model: object = None) -> Iterator[str]:
        if p is prompt:
            raise ModelError("local model failed: out of memory")
        yield from generate(p, inputs, model)

    monkeypatch.setattr(chain, "_generate", failing)


def test_a_turn_failing_after_retrieval_opens_the_sources_its_panel_shows(chain: Chain,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The panel showed the failed turn's passages while the session kept the previous turn's: card [1]
    ("Latin Times") opened the OAN article that was [1] the turn before."""
    from rag.prompts import ANSWER_PROMPT

    first = list(respond(chain, DEPORTEES, Session()))[-1].session
    _failing_answers(chain, monkeypatch, ANSWER_PROMPT)
    steps = list(respond(chain, "Where will the Danish prisoners serve their sentences?", first))
    last = steps[-1]
    assert "error: local model failed: out of memory" in _last_bot(last.session)
    panel = [s.sources for s in steps if s.sources is not None][-1]
    shown = dict(re.findall(r'data-n="(\d+)".*?<div class="meta">([^<]*)', panel))
    assert shown and [n for _, n in [s.choices for s in steps if s.choices is not None][-1]] == list(shown)
    for n in shown:  # each card opens the article it names
        ctx = next(c for c in last.session.contexts if str(c.n) == n)
        assert ctx.article_id in shown[n] and ctx.article_id in show_source(chain, last.session, n)
    assert last.session.citations == () and last.session.history == first.history
    assert "the answer failed; these passages were found" in panel


def test_a_failed_turn_never_leaves_the_panel_searching(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """A follow-up whose rewrite failed left "searching the articles…" in the sources panel for good."""
    from rag.prompts import REWRITE_PROMPT

    first = list(respond(chain, DEPORTEES, Session()))[-1].session
    _failing_answers(chain, monkeypatch, REWRITE_PROMPT)
    last = list(respond(chain, "Who said that?", first))[-1]
    assert "error: local model failed" in _last_bot(last.session)
    assert last.sources is not None and "searching" not in last.sources and "the question failed" in last.sources
    assert last.choices == [] and last.session.contexts == ()


def test_a_refused_question_leaves_the_sources_panel_as_it_was(chain: Chain) -> None:
    """A question over the length limit emptied the panel ("searching the articles…", for good) and its
    dropdown, while the session still held the earlier turn's sources."""
    first = list(respond(chain, DEPORTEES, Session()))[-1].session
    steps = list(respond(chain, "why " * 600, first))
    assert "character limit" in _last_bot(steps[-1].session)
    assert all(s.sources is None and s.choices is None for s in steps)  # the panel is left unchanged
    assert steps[-1].session.contexts == first.contexts and steps[-1].session.citations == first.citations


def test_clearing_the_conversation_stops_an_answer_under_way(chain: Chain) -> None:
    """"Clear conversation" during an answer was undone by the answer's next step (the cleared turns came back,
    and the next question was a follow-up to them): both clear buttons now cancel the running answer."""
    deps = app.create_app(chain).config["dependencies"]
    asks = {i for i, d in enumerate(deps) if d["api_name"] in ("on_ask", "on_ask_1")}
    assert len(asks) == 2
    for clear in [d for d in deps if d["api_name"] in ("on_clear", "on_clear_1")]:
        cancelling = [d for d in deps if d["targets"] == clear["targets"] and d["cancels"]]
        assert cancelling and set(cancelling[0]["cancels"]) == asks, clear["targets"]


def test_the_question_is_shown_as_typed_not_as_markdown() -> None:
    """The chat read the user's message as markdown: "2*3*4" showed "3" in italics, "# Kosovo" as a heading."""
    assert render.question_html("Is 2*3*4 < 5?\n\n# Kosovo") == (
        '<div class="question">Is 2*3*4 &lt; 5?<br><br># Kosovo</div>')  # one HTML block: no markdown inside


def test_two_files_of_one_name_in_one_upload_do_not_replace_each_other(chain: Chain, tmp_path: Path) -> None:
    """Two ferry.txt from two folders in one upload: "added 1", then "updated 1", and the first story was gone."""
    first, second = tmp_path / "a" / "ferry.txt", tmp_path / "b" / "ferry.txt"
    for path, text in ((first, "The Ostrava ferry carried 412 passengers on its first day.\n"),
                       (second, "The Lindau ferry was cancelled because of storms on Friday.\n")):
        path.parent.mkdir()
        path.write_text(text)
    results = ingest_uploads(chain, [(first, "ferry.txt"), (second, "ferry.txt"), (first, "ferry.txt")])
    assert [(name, ok) for name, _, ok in results] == [("ferry.txt", True), ("ferry.txt", False), ("ferry.txt", True)]
    assert results[1][1] == ("rejected: another file of this upload is also named ferry.txt and was stored (rename"
                             " one of them) (nothing from this file was stored)")
    assert results[2][1].startswith("unchanged 1")  # the same file twice is no clash
    assert "412 passengers" in chain.store.article("ferry").text  # type: ignore[union-attr]


def test_each_collection_keeps_its_own_uploads(settings: Settings, tmp_path: Path) -> None:
    """One data_dir/uploads for every collection: an upload to a chat on collection "bbb" replaced the file
    collection "aaa" had stored under that name, and a manifest upload there ingested "aaa"'s files into "bbb"."""
    chains = {name: Chain(settings, Store(settings.data_dir, name), make_backend(settings)) for name in ("aaa", "bbb")}
    for name, text in (("aaa", "The Ostrava ferry carried 412 passengers on its first day.\n"),
                       ("bbb", "The Lindau ferry was cancelled because of storms on Friday.\n")):
        src = tmp_path / name / "ferry.txt"
        src.parent.mkdir()
        src.write_text(text)
        assert all(ok for _, _, ok in ingest_uploads(chains[name], [(src, "ferry.txt")]))
    kite = tmp_path / "kite.txt"
    kite.write_text("A kite festival drew 3,000 visitors to the beach on Sunday.\n")
    assert ingest_uploads(chains["aaa"], [(kite, "kite.txt")])[0][2]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"id": "ferry", "outlet": "Bugle"}) + "\n")
    assert ingest_uploads(chains["bbb"], [(manifest, "manifest.jsonl")])[0][2]
    assert [r.id for r in chains["bbb"].store.articles()] == ["ferry"]  # not "aaa"'s kite
    assert "412 passengers" in (settings.data_dir / "uploads-aaa" / "ferry.txt").read_text()
    assert "412 passengers" in chains["aaa"].store.article("ferry").text  # type: ignore[union-attr]
    assert "Lindau" in (settings.data_dir / "uploads-bbb" / "ferry.txt").read_text()
    assert not (settings.data_dir / "uploads").exists()  # the default collection's folder, as before


def test_serve_chats_over_the_collection_named(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rag serve` had no --collection (only RAG_COLLECTION), where ingest, ask and remove have one."""
    built: list[str] = []

    def create_app(chain: Chain) -> gr.Blocks:
        built.append(chain.store.collection)
        return gr.Blocks()

    monkeypatch.setattr(launch, "create_app", create_app)
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: None)
    assert cli.main(["serve", "--port", "1", "--collection", "other"]) == 0
    assert cli.main(["serve", "--port", "1"]) == 0
    assert built == ["other", "articles"]
