"""A visit in a real browser: headless Chromium (Debian's) driven by Playwright, against the real server.

Every scenario takes a screenshot into its temporary directory and fails on any console error or any
request to somewhere other than the server.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def visit(browser, server, tmp_path):
    """A fresh Japanese-speaking tab; on leaving, the page must have logged no error and stayed home."""
    context = browser.new_context(locale="ja-JP", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith((server.url, "data:"))
            else elsewhere.append(request.url))
    shots = iter(range(100))

    def shoot(name: str) -> Path:
        path = tmp_path / f"{next(shots):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    page.shoot = shoot
    page.expected_errors = []  # a scenario that provokes an HTTP error says which
    yield page
    context.close()
    assert [e for e in errors if e not in page.expected_errors] == [], errors
    assert elsewhere == [], elsewhere
    assert list(tmp_path.glob("*.png")), "every scenario leaves its screenshots"


def test_from_the_landing_page_through_a_bureau_to_a_measure(visit, server):
    page = visit
    page.goto(server.url + "/")
    page.shoot("landing")
    page.get_by_role("link", name="局・部・課から施策を見る").click()
    page.get_by_role("link", name="産業労働局").click()
    assert page.locator("h1").inner_text() == "産業労働局"
    page.shoot("bureau")
    page.get_by_role("link", name="商工部", exact=True).first.click()
    page.get_by_role("link", name="調整課", exact=True).first.click()
    assert page.locator("h1").inner_text() == "調整課"
    page.shoot("section")
    page.get_by_role("link", name="多摩イノベーションエコシステム促進事業").click()
    assert page.locator("h1").inner_text() == "多摩イノベーションエコシステム促進事業"
    assert page.locator("nav.chain li").all_inner_texts() == ["東京都", "産業労働局", "商工部", "調整課"]
    assert page.locator('a[href="tel:+81-3-5320-5982"]').count() == 1
    assert "令和6年度まで" in page.content()
    page.shoot("measure")


def test_search_and_open_a_result(visit, server):
    page = visit
    page.goto(server.url + "/browse/strategies")
    page.get_by_role("searchbox").fill("移住")
    page.get_by_role("button", name="検索").click()
    assert page.locator("h1").inner_text() == "検索: 「移住」"
    assert page.locator("ol.results mark").count() >= 5
    page.shoot("search")
    first = page.locator("ol.results li a").first
    name = first.inner_text()
    first.click()
    assert page.locator("h1").inner_text() == name
    page.shoot("result")


def test_run_an_example_in_the_query_editor(visit, server):
    page = visit
    page.goto(server.url + "/sparql")
    page.wait_for_selector(".yasqe .CodeMirror")
    page.get_by_role("button", name="局ごとの施策数").click()
    page.locator(".yasqe_queryButton").click()
    rows = page.locator(".yasr table tbody tr")
    rows.first.wait_for(timeout=15_000)
    assert rows.count() == 3
    assert "総務局" in page.locator(".yasr").inner_text()
    page.shoot("query")


def test_the_query_editor_explains_errors(visit, server):
    page = visit
    page.expected_errors = ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    page.goto(server.url + "/sparql?query=" + "SELECT%20*%20WHERE%20%7B%20%3Fs%20")  # a link runs its query
    page.wait_for_function("document.querySelector('.yasr') && /not valid SPARQL/.test("
                           "document.querySelector('.yasr').innerText)", timeout=15_000)
    page.shoot("query-error")


def test_switch_to_english(visit, server):
    page = visit
    page.goto(server.url + "/doc/unit/10")
    assert page.locator("h1").inner_text() == "産業労働局"
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Bureau of Industrial and Labor Affairs"
    page.goto(server.url + "/")
    assert page.locator("h1").inner_text() == "Tokyo Metropolitan Government: policy measures"
    page.shoot("english")


def test_the_query_editor_says_when_an_answer_is_cut_or_stopped(visit, server):
    page = visit
    page.expected_errors = ["Failed to load resource: the server responded with a status of 503 (Service Unavailable)"]
    page.goto(server.url + "/sparql?query=" + "SELECT%20*%20WHERE%20%7B%20%3Fs%20%3Fp%20%3Fo%20%7D")
    notice = page.locator("#notice")
    notice.wait_for(state="visible", timeout=15_000)
    assert "先頭 100 行で打ち切られています" in notice.inner_text()
    page.shoot("truncated")
    page.goto(server.url + "/sparql?query=" + "SELECT%20(COUNT(*)%20AS%20%3Fn)%20%7B%20%3Fa%20%3Fb%20%3Fc%20.%20%3Fd"
              "%20%3Fe%20%3Ff%20.%20%3Fg%20%3Fh%20%3Fi%20.%20%3Fj%20%3Fk%20%3Fl%20.%20%3Fm%20%3Fn2%20%3Fo%20%7D")
    page.wait_for_function("document.querySelector('.yasr') && /longer than the 3-second limit/.test("
                           "document.querySelector('.yasr').innerText)", timeout=20_000)
    page.shoot("timeout")
