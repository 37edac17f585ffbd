"""The chat UI in a real headless Chromium, against `rag serve` with the fake models."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.settings import PROJECT_ROOT

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/lib/chromium/chromium")
ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
# The README's screenshots are refreshed on purpose (UPDATE_SCREENSHOTS=1 make test), not by every run:
# a plain `make test` leaves the checkout as it was.
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else ARTIFACTS
TIMEOUT_MS = 30_000
SCRIPT_ARTICLE = ("Zembla <img src=x onerror=alert(2)> Harbour Festival Opens\n\n"
                  "The zembla harbour festival opened with <script>alert(1)</script> fireworks over the quay.\n\n"
                  "Organisers said the zembla harbour festival drew twelve thousand visitors on Saturday.\n")

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright  # noqa: E402

from tests.servers import RAG, rag_serve  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rag serve` over the seeds plus an article carrying HTML, all ingested before the server starts
    (a local Chroma store is not shared safely between two live processes)."""
    tmp = tmp_path_factory.mktemp("ui-browser")
    extra = tmp / "extra"
    extra.mkdir()
    (extra / "zembla_festival.txt").write_text(SCRIPT_ARTICLE)
    env = {**os.environ, "RAG_LLM": "fake", "RAG_EMBEDDINGS": "fake", "RAG_DATA_DIR": str(tmp / "data"),
           "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False"}
    env.pop("RAG_UI_AUTH", None)
    for folder in ("seeds", str(extra)):
        subprocess.run([*RAG, "ingest", folder], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    with rag_serve(env, tmp / "serve.log", stop_timeout=10) as served:
        yield served.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh browser context per test: its own Gradio session. Fails on any JS dialog or off-host request."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    dialogs, hosts = watch(page)
    page.goto(server)
    expect(page.locator("#question textarea")).to_be_visible(timeout=TIMEOUT_MS)
    yield page
    context.close()
    check_watched(dialogs, hosts, server)


def watch(page: Page) -> tuple[list[str], set[str]]:
    """From now on, record (and dismiss) every JS dialog and the host of every request ``page`` makes."""
    dialogs: list[str] = []
    hosts: set[str] = set()

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]) if "://" in r.url else None)
    return dialogs, hosts


def check_watched(dialogs: list[str], hosts: set[str], server: str) -> None:
    """No script opened a dialog and the page contacted no host but ``server``'s."""
    assert not dialogs, f"a script ran in the page: {dialogs}"
    assert hosts <= {server.split("/")[2]}, f"the page contacted other hosts: {hosts}"


def _shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _ask(page: Page, question: str) -> Any:
    before = page.locator('[data-testid="bot"]').count()
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()
    expect(page.locator('[data-testid="bot"]')).to_have_count(before + 1, timeout=TIMEOUT_MS)
    bot = page.locator('[data-testid="bot"]').last
    # the final message replaces the streamed text (no pending/streaming marker left)
    expect(bot.locator(".answer, .error").first).to_be_visible(timeout=TIMEOUT_MS)
    expect(bot.locator(".streaming, .pending")).to_have_count(0, timeout=TIMEOUT_MS)
    return bot


def test_answer_has_citation_markers_and_checkable_source_cards(page: Page) -> None:
    bot = _ask(page, "How many deportees did Kosovo agree to take?")
    expect(bot.locator(".cite").first).to_have_text(re.compile(r"\[\d+\]"))
    expect(bot.locator(".cite").first).to_have_attribute("title", re.compile(r"50"))  # the sentence it rests on
    expect(bot).to_contain_text("50")
    card = page.locator("#sources .source-card.cited").first
    expect(card).to_be_visible()
    expect(card.locator("mark")).to_be_visible()
    card.click()
    expect(page.locator("#article-view mark.passage")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#article-view mark.quote")).to_be_visible()
    page.locator("#source-select input").click()  # the dropdown is the other way to open a source
    page.get_by_role("option").last.click()
    expect(page.locator("#article-view mark.passage")).to_be_visible(timeout=TIMEOUT_MS)
    page.locator("#sources .source-card.cited").first.click()
    expect(page.locator("#article-view mark.quote")).to_be_visible(timeout=TIMEOUT_MS)
    path = _shot(page, "chat.png")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / "chat-fake.png")


def test_follow_up_clear_and_abstention(page: Page) -> None:
    _ask(page, "How many deportees did Kosovo agree to take?")
    follow = _ask(page, "Where will they serve their sentences?")
    expect(follow.locator(".standalone")).to_contain_text("searched for:")
    page.locator("#clear").click()
    expect(page.locator('[data-testid="bot"]')).to_have_count(0, timeout=TIMEOUT_MS)
    bot = _ask(page, "What is the capital of Australia?")
    expect(bot.locator(".abstained")).to_be_visible()
    expect(bot).to_contain_text("The articles don't say")
    expect(page.locator("#sources")).to_contain_text("None of these passages answers the question.")
    _shot(page, "abstained.png")


def test_browser_sessions_keep_separate_histories(page: Page, browser: Browser, server: str) -> None:
    _ask(page, "How many deportees did Kosovo agree to take?")
    other = browser.new_context().new_page()
    try:
        other.goto(server)
        expect(other.locator("#question textarea")).to_be_visible(timeout=TIMEOUT_MS)
        assert other.locator('[data-testid="bot"]').count() == 0
        bot = _ask(other, "Where will the Danish prisoners serve their sentences?")
        expect(bot.locator(".standalone")).to_have_count(0)  # no history here, so nothing was rewritten
        expect(other.locator('[data-testid="user"]')).to_have_count(1)
        expect(page.locator('[data-testid="user"]')).to_have_count(1)
    finally:
        other.context.close()


def test_upload_appears_in_the_library(page: Page, tmp_path: Path) -> None:
    upload = tmp_path / "quarry_report.txt"
    upload.write_text("Quarry Report\n\nThe Brellin quarry reopened on Monday after a two-year closure.\n\n"
                      "Workers at the Brellin quarry said three hundred jobs would return.\n")
    page.get_by_role("tab", name="Library").click()
    expect(page.locator("#library")).to_contain_text("000_04e378fec4435f9b", timeout=TIMEOUT_MS)
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    expect(page.locator("#upload-result")).to_contain_text("added 1", timeout=TIMEOUT_MS)
    expect(page.locator("#library")).to_contain_text("quarry_report", timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("7 articles")
    _shot(page, "library.png")


def test_html_in_an_article_shows_as_text(page: Page) -> None:
    bot = _ask(page, "What opened the zembla harbour festival?")
    expect(bot).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("#sources")).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("#sources")).to_contain_text("<img src=x onerror=alert(2)>")
    page.locator("#sources .source-card").first.click()
    expect(page.locator("#article-view")).to_contain_text("<script>alert(1)</script>", timeout=TIMEOUT_MS)
    assert page.locator("#chat script, #sources script, #article-view script, #sources img").count() == 0
    page.get_by_role("tab", name="Library").click()
    expect(page.locator("#library")).to_contain_text("<img src=x onerror=alert(2)>", timeout=TIMEOUT_MS)
    assert page.locator("#library img").count() == 0
    _shot(page, "escaped.png")


def test_copy_message_copies_the_text_shown(browser: Browser, server: str) -> None:
    """"Copy message" copied each message's HTML (`<div class="answer">… <span class="cite" title=…>[1]</span>`),
    and the question was shown as markdown ("2*3*4" with "3" in italics, "# …" as a heading)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    dialogs, hosts = watch(page)
    try:
        page.goto(server)
        expect(page.locator("#question textarea")).to_be_visible(timeout=TIMEOUT_MS)
        question = "How many deportees did Kosovo agree to take? (2*3*4 < 5)\n\n# not a heading"
        bot = _ask(page, question)
        user = page.locator('[data-testid="user"]').last
        expect(user).to_contain_text("(2*3*4 < 5)")  # as typed: no emphasis, no heading
        assert user.locator("em, strong, h1").count() == 0
        answer = bot.locator(".answer").inner_text()
        copies = []
        buttons = page.locator('#chat button[aria-label="Copy message"]')
        expect(buttons).to_have_count(2, timeout=TIMEOUT_MS)  # the question's and the answer's
        for i in range(2):
            buttons.nth(i).click()
            copies.append(page.evaluate("navigator.clipboard.readText()"))
        assert copies[0] == question
        assert "<" not in copies[1] and re.search(r"deportees.*\[\d\]", copies[1]), copies[1]
        assert " ".join(copies[1].split()) == " ".join(answer.split())  # the answer as shown, with its [n]
    finally:
        context.close()
    check_watched(dialogs, hosts, server)
