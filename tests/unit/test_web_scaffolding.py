"""The HTML scaffolding: catalogues agree, every label a template uses exists, headers, error pages, escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.web.templating import ENV, WEB_DIR, translate
from api.web.urls import safe_next

KEY_RE = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""")


def _catalogue(name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((WEB_DIR / "i18n" / name).read_text(encoding="utf-8"))
    return data


def test_catalogues_have_the_same_keys() -> None:
    zh, en = _catalogue("zh_CN.json"), _catalogue("en.json")
    assert set(zh) == set(en), sorted(set(zh) ^ set(en))
    assert all(v.strip() for v in [*zh.values(), *en.values()])


def test_every_literal_label_in_templates_and_code_is_in_the_catalogue() -> None:
    zh = _catalogue("zh_CN.json")
    used: set[str] = set()
    for path in [*WEB_DIR.rglob("*.html"), *WEB_DIR.rglob("*.py")]:
        used |= set(KEY_RE.findall(path.read_text(encoding="utf-8")))
    missing = sorted(k for k in used if k not in zh)
    assert not missing, missing


def test_translate_falls_back_and_formats() -> None:
    assert translate("en", "login.submit") == "Log in"
    assert translate("zh-CN", "login.submit") == "登录"
    assert translate("en", "no.such.key") == "no.such.key"


def test_autoescape_is_on() -> None:
    out = ENV.from_string("{{ v }}").render(v="<img src=x onerror=alert(1)>")
    assert out == "&lt;img src=x onerror=alert(1)&gt;"


@pytest.mark.parametrize(("target", "expected"), [
    ("/console/f/1?x=2", "/console/f/1?x=2"), ("//evil.example/", "/console/"), ("/\\evil", "/console/"),
    ("https://evil.example/", "/console/"), (None, "/console/"), ("/a\r\nSet-Cookie: x", "/console/"),
])
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.fixture
def client() -> TestClient:
    from api.app import create_app
    from schemas.settings import Settings

    return TestClient(create_app(Settings(database_url=None)), raise_server_exceptions=False)


def test_html_pages_carry_the_security_headers(client: TestClient) -> None:
    r = client.get("/console/login")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert 'style="' not in r.text and "<script>" not in r.text


def test_html_routes_get_error_pages_and_v1_keeps_json(client: TestClient) -> None:
    page = client.get("/console/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "404" in page.text and "content-security-policy" in page.headers
    api = client.get("/v1/no-such-thing")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_static_echarts_and_its_licence_are_served(client: TestClient) -> None:
    js = client.get("/static/echarts.min.js")
    assert js.status_code == 200 and len(js.content) > 500_000
    assert "Apache License" in client.get("/static/echarts.LICENSE").text


def test_language_switch(client: TestClient) -> None:
    r = client.get("/lang?to=en&next=//evil.example/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    assert "rt_lang=en" in r.headers["set-cookie"]
    assert "Log in to the console" in client.get("/console/login").text
    assert Path(WEB_DIR / "static" / "echarts.NOTICE").exists()


def test_a_database_outage_is_a_503_page_on_html_routes_and_json_on_v1() -> None:
    from api.app import create_app
    from schemas.settings import Settings

    app = create_app(Settings(database_url="postgresql://postgres@127.0.0.1:1/none", api_auth=False))
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/console/")
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in page.headers and "127.0.0.1" not in page.text
    api = client.get("/v1/readings")
    assert api.status_code == 503 and api.json()["error"]["code"] == "unavailable"
