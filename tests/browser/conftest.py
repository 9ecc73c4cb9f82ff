"""Browser tests: Debian's Chromium driven by Playwright, against the real stack.

Shared fixtures: ``browser`` (headless Chromium at /usr/bin/chromium, ``--no-sandbox`` since CI runs
as root; the tests skip, saying why, only when no Chromium or no Playwright exists), ``live_server``
(the API app served by uvicorn on a free port, with the pipeline fixtures of tests/conftest.py
feeding its database), ``issue_token`` (a token straight into the registry), ``login`` (a page
logged in to the console through its form) and ``screenshot`` (a PNG into docs/screenshots/).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import Settings

CHROMIUM = os.environ.get("RT_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def context_factory(browser: Any) -> Iterator[Callable[..., Any]]:
    """New browser contexts (separate cookie jars), 1440x900, zh-CN; each collects CSP violations."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN", **kwargs)
        ctx.csp_violations = []
        ctx.on("console", lambda m: ctx.csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        made.append(ctx)
        return ctx

    try:
        yield make
    finally:
        for ctx in made:
            ctx.close()


@dataclass
class LiveServer:
    url: str
    settings: Settings


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The API (console included) in uvicorn on a free port, bearer auth on."""
    import uvicorn

    from api.app import create_app

    auth = settings.with_overrides(api_auth=True)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(auth), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", auth)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def issue_token(db_dsn: str) -> Callable[..., str]:
    from storage.db import connect
    from storage.tokens import issue_token as issue

    def make(role: str, **kwargs: Any) -> str:
        conn = connect(db_dsn)
        try:
            issued = issue(conn, name=kwargs.pop("name", f"browser {role}"), role=role, actor="test", **kwargs)
            conn.commit()
        finally:
            conn.close()
        return issued.token

    return make


@pytest.fixture
def login(context_factory: Callable[..., Any], live_server: LiveServer) -> Callable[[str], Any]:
    """A new page, logged in to the console with ``token`` by filling the log-in form."""

    def do(token: str) -> Any:
        page = context_factory().new_page()
        page.goto(f"{live_server.url}/console/")
        assert "/console/login" in page.url  # no session: the log-in page
        page.fill("#token", token)
        page.click("#login-submit")
        page.wait_for_url(f"{live_server.url}/console/**")
        assert "/console/login" not in page.url
        return page

    return do


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
