"""The web page in a real browser: Playwright drives Debian's Chromium against a live server on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("SEQ2SEQ_BROWSER_TESTS") == "required"  # set by .ci/run: missing parts fail there
if not CHROMIUM.exists() and not REQUIRED:
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("fastapi")
if REQUIRED:
    import playwright.sync_api as sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("uvicorn")

from seq2seq.serve import Limits, Settings, create_app, load_models  # noqa: E402
from tests.serve.test_serve import trained_models  # noqa: E402
from tests.serving import serving  # noqa: E402

pytestmark = pytest.mark.slow  # a server and a browser

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A uvicorn server (in a thread of this process) serving the reversing translator and the char LM."""
    dirs = trained_models(tmp_path_factory.getbasetemp() / "serve-models")
    models, paths = load_models([f"{name}={path}" for name, path in dirs.items()], device="cpu")
    with serving(create_app(models, Settings(limits=Limits(max_chars=200)), paths)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any], Path]]:
    """A server of the classifier and the speech model of test_serve_tasks: its URL, the models, the spoken words'
    list."""
    from tests.serve.test_serve_tasks import trained_task_models  # here: it skips without the speech extra

    dirs = trained_task_models(tmp_path_factory.getbasetemp() / "serve-task-models")
    models, paths = load_models([f"{name}={path}" for name, path in dirs.items()], device="cpu")
    with serving(create_app(models, Settings(), paths)) as url:
        yield url, models, dirs["speech"].parent / "words.tsv"


@contextmanager
def opened(browser: Any, url: str) -> Iterator[Any]:
    """The page at url in a fresh browser context, once it has listed the models."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#model option", state="attached")
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, server_url: str) -> Iterator[Any]:
    with opened(browser, server_url) as found:
        yield found


def test_translate_shows_the_output_and_its_attention_heatmap(page: Any) -> None:
    page.fill("#translate-text", "a b c d")
    page.click("#translate-btn")
    page.wait_for_selector("#translations li")
    assert page.inner_text("#translations li .text").strip()
    tokens = page.eval_on_selector_all("#heatmap tbody tr", "rows => rows.length")
    sources = page.eval_on_selector_all("#heatmap thead th", "cells => cells.length") - 1
    assert sources == 4 and tokens >= 1
    assert page.eval_on_selector_all("#heatmap td.cell", "cells => cells.length") == tokens * sources


def test_n_best_lists_that_many_outputs_with_scores(page: Any) -> None:
    page.fill("#translate-text", "e f g")
    page.select_option("#strategy", "beam")
    page.fill("#beam-size", "4")
    page.fill("#n-best", "3")
    page.click("#translate-btn")
    page.wait_for_function("document.querySelectorAll('#translations li').length === 3")
    scores = [float(score) for score in page.eval_on_selector_all("#translations .score",
                                                                   "els => els.map(e => e.textContent)")]
    assert len(scores) == 3 and all(score <= 0 for score in scores)


def test_generate_writes_text_with_the_temperature_slider(page: Any) -> None:
    page.select_option("#model", "lm")
    page.fill("#gen-temperature", "0.5")
    assert page.inner_text("#gen-temperature-value") == "0.5"
    page.fill("#prompt", "the")
    page.fill("#gen-length", "15")
    page.click("#generate-btn")
    page.wait_for_selector("#generated[data-done=true]")
    text = page.inner_text("#generated")
    assert text.startswith("the") and len(text) > len("the")


def test_chat_turn_and_reset(page: Any) -> None:
    page.fill("#chat-message", "a b c")
    page.click("#chat-send")
    page.wait_for_selector("#chat-log .turn.bot")
    assert page.inner_text("#chat-log .turn.user") == "a b c"
    page.click("#chat-reset")
    assert page.eval_on_selector_all("#chat-log .turn", "turns => turns.length") == 0


def test_an_oversized_input_shows_the_servers_error(page: Any) -> None:
    page.fill("#translate-text", "a " * 150)
    page.click("#translate-btn")
    page.wait_for_selector("#error", state="visible")
    assert "texts.0: 300 characters is over the limit of 200" in page.inner_text("#error")


def test_classify_shows_the_labels_with_their_probabilities(browser: Any, tasks: tuple) -> None:
    url, models, _ = tasks
    with opened(browser, url) as page:
        assert page.is_hidden("#translate-panel") and page.is_hidden("#transcribe-panel")
        page.fill("#classify-text", "a b a c")
        page.click("#classify-btn")
        page.wait_for_selector("#labels li")
        labels = page.eval_on_selector_all("#labels li .text", "els => els.map(e => e.textContent)")
        scores = page.eval_on_selector_all("#labels li .score", "els => els.map(e => Number(e.textContent))")
        weighed = page.eval_on_selector_all("#classify-tokens span", "spans => spans.length")
    wanted = models["topics"].classify_detailed(["a b a c"], top_k=3)[0]
    assert labels == [label for label, _ in wanted.top] and weighed == 4
    assert scores == pytest.approx([probability for _, probability in wanted.top], abs=1e-3)


def test_transcribe_shows_the_transcript_of_an_uploaded_wav(browser: Any, tasks: tuple, tmp_path: Path) -> None:
    url, models, words = tasks
    wav = words.parent / "words" / "00002.wav"
    with opened(browser, url) as page:
        page.select_option("#model", "speech")
        assert page.is_hidden("#classify-panel") and page.is_visible("#transcribe-panel")
        page.set_input_files("#wav-file", str(wav))
        page.click("#transcribe-btn")
        page.wait_for_selector("#transcript[data-done=true]")
        assert page.text_content("#transcript") == models["speech"].transcribe([wav])[0]
        (tmp_path / "notes.wav").write_text("not audio")
        page.set_input_files("#wav-file", str(tmp_path / "notes.wav"))
        page.click("#transcribe-btn")
        page.wait_for_selector("#error", state="visible")
        assert "body: cannot read as audio" in page.inner_text("#error")
