"""The dashboard in a real browser (the system's headless Chromium, driven by
Playwright) against the suite that just played the short plan: every page
loads without console errors and draws data, a new business day reaches the
forecast chart without a reload, and a rollback made on the page moves the
alias and the predictor that follows it."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rxcast.clients.drift import DriftClient
from rxcast.clients.feature import FeatureClient
from rxcast.clients.records import normalize, to_protos
from rxcast.clients.trainer import TrainerClient
from rxcast.demo.plan import short_plan
from rxcast.runtime import tls
from rxcast.sim import simulate
from tests.scrape import metrics_text

#: The package's fixture plays the short plan first when these run alone: minutes.
pytestmark = pytest.mark.timeout(1800)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "reports" / "dashboard"
PAGES = ("forecasts", "drift", "models", "comparison", "health")

playwright_api = pytest.importorskip("playwright.sync_api")


def _token(identity: str) -> str:
    """A bearer token from the session's credentials directory (make certs)."""
    return tls.ClientSettings(identity=identity).trust().token


def _use_token(page, identity: str) -> None:
    page.fill("#operator-token", _token(identity))
    page.dispatch_event("#operator-token", "change")


def _dialog_saying(page, text: str, what: str) -> None:
    """Wait for an alert holding `text`; Playwright's sync API hands dialogs to
    their handler only while it runs, so the wait runs it (wait_for_timeout)."""
    _wait_for(lambda: page.wait_for_timeout(100) or any(text in d for d in page.dialogs), what=what)


def _wait_for(condition, timeout: float = 30.0, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def url(played) -> str:
    (line,) = [line for line in played.lines if line.startswith("dashboard: http://")]
    return line.split()[1]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "the system's chromium is missing (the test command installs Debian's package)"
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    dialogs: list[str] = []
    page.on(
        "dialog", lambda d: (dialogs.append(d.message), d.accept(d.default_value) if d.type == "prompt" else d.accept())
    )
    page.goto(url)
    page.problems = problems
    page.dialogs = dialogs
    yield page
    context.close()


def _points(page, chart: str, trace: int | None = None) -> int:
    """Points drawn on a chart: of every trace, or of one (by position)."""
    chosen = "data" if trace is None else f"data.slice({trace}, {trace + 1})"
    return page.evaluate(
        f"() => (document.getElementById('{chart}').{chosen} || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0)"
    )


def _open(page, name: str) -> None:
    page.click(f"nav button[data-page='{name}']")
    page.wait_for_selector(f"#page-{name}.active")


def test_the_demo_prints_the_dashboard_url(url):
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")


def test_every_page_loads_and_draws_data_without_console_errors(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _wait_for(lambda: _points(page, "forecast-chart") > 0, what="forecast points")
    assert page.evaluate("() => document.getElementById('forecast-chart').data[1].x.length") > 0, "no batch points"
    page.screenshot(path=str(SCREENSHOTS / "forecasts.png"))

    _open(page, "drift")
    _wait_for(lambda: page.locator("#incidents tr").count() > 1, what="the incidents table")
    assert _points(page, "drift-chart") > 0
    page.locator("#incidents tr:has-text('data_drift') a.incident-link").first.click()
    _wait_for(lambda: page.locator("#evidence-charts .chart").count() > 0, what="an incident's histograms")
    assert _points(page, "evidence-0") > 0
    band, estimated, online, batch = (_points(page, "error-chart", n) for n in range(4))
    assert estimated > 0 and band == estimated, "every scored window carries its estimate and its band"
    assert online > 0 and batch == online, "the measured error per day, once actuals arrived"
    page.screenshot(path=str(SCREENSHOTS / "drift.png"), full_page=True)

    _open(page, "models")
    _wait_for(lambda: page.locator("#versions tr").count() > 2, what="the versions table")
    _wait_for(lambda: page.locator("#policies tr").count() == 3, what="both aliases' training policies")
    newest_job = page.locator("#policies tr:has-text('every 1 data day') td").nth(4).inner_text()
    assert newest_job.startswith("job-"), newest_job
    assert _points(page, "alias-chart") > 0
    page.screenshot(path=str(SCREENSHOTS / "models.png"))

    _open(page, "comparison")
    _wait_for(lambda: page.locator("#comparison tr").count() > 5, what="the comparison table")
    versions = page.locator("#comparison tr:has-text('model version') td").all_inner_texts()
    assert versions[1] != "–" and versions[2] != "–", versions
    page.screenshot(path=str(SCREENSHOTS / "comparison.png"))

    _open(page, "health")
    _wait_for(lambda: page.locator("#health .status-SERVING").count() == 5, what="five serving services")
    page.screenshot(path=str(SCREENSHOTS / "health.png"))
    assert page.problems == []


#: The queues the health page shows per service, each a gauge on the service's /metrics.
QUEUES = {
    "feature": {"calls in flight", "ingest records in flight"},
    "trainer": {"calls in flight", "jobs queued", "jobs queued or running", "triggers waiting"},
    "drift": {"calls in flight", "open window rows", "windows awaiting scoring", "predictions awaiting actuals"},
    "predictor-online": {"calls in flight", "rows waiting for drift"},
    "predictor-batch": {"calls in flight", "rows waiting for drift"},
}


def _last_error_logged(process) -> str:
    """The newest warning or error a service logged, as its own /metrics says."""
    for family in text_string_to_metric_families(metrics_text(process.metrics_port)):
        for sample in family.samples:
            if sample.name == "rxcast_last_error_info" and sample.labels.get("message"):
                return sample.labels["message"]
    return ""


def test_the_health_page_shows_every_services_queues_and_last_error(page, played):
    _open(page, "health")
    _wait_for(lambda: page.locator("#health .status-SERVING").count() == 5, what="five serving services")

    def cell(service: str, column: int) -> str:
        return page.locator(f"#health tr:has(td:text-is('{service}')) td").nth(column).inner_text()

    warned = []
    for service, queues in QUEUES.items():
        shown = dict(line.rsplit(": ", 1) for line in cell(service, 7).splitlines())
        assert set(shown) == queues, (service, shown)
        assert all(float(depth) >= 0 for depth in shown.values()), (service, shown)
        logged = _last_error_logged(played.suite[service])
        if logged:
            _wait_for(lambda s=service, m=logged: m.splitlines()[0] in cell(s, 8), what=f"{service}'s last error")
            warned.append(service)
    assert "drift" in warned, "the short plan's event makes the drift service warn of drift"
    assert page.problems == []


def test_a_new_business_day_reaches_the_forecast_chart_without_a_reload(page, played):
    _wait_for(lambda: _points(page, "forecast-chart") > 0, what="forecast points")
    page.evaluate("() => { window.notReloaded = true; }")
    store = page.input_value("#store")
    before = page.evaluate("() => document.getElementById('forecast-chart').data[0].x.slice(-1)[0]")

    world = simulate(short_plan().scenario)
    records = normalize(world.records_for_day(world.days[-1]))
    records = records[records["store_id"] == store].copy()
    next_day = pd.Timestamp(records["business_day"].iloc[0]) + pd.Timedelta(days=1)
    records["business_day"] = next_day.strftime("%Y-%m-%d")
    with FeatureClient(played.suite["feature"].address) as feature:
        outcome = feature.ingest(to_protos(records))
    assert outcome.accepted == len(records) and not outcome.errors

    newest = _wait_for(
        lambda: (
            day
            if (day := page.evaluate("() => document.getElementById('forecast-chart').data[0].x.slice(-1)[0]"))
            != before
            else None
        ),
        timeout=60,
        what="the new day's online forecast on the chart",
    )
    assert newest == next_day.strftime("%Y-%m-%d")
    assert page.evaluate("() => window.notReloaded === true")
    assert page.problems == []


def test_a_rollback_on_the_page_moves_the_alias(page, played):
    with TrainerClient(played.suite["trainer"].address) as trainer:
        history = trainer.alias_history("online")
    assert history and history[0].from_version, "the short plan's online policy promotes retrained models"
    previous = history[0].from_version
    _open(page, "models")
    page.wait_for_selector("button.rollback[data-alias='online']")
    # The page acts with the operator's own token: the trainer, not the
    # dashboard, refuses anyone without one and a reader alike.
    page.click("button.rollback[data-alias='online']")
    _dialog_saying(page, "token is required", what="the refusal without a token")
    _use_token(page, "reader")
    page.click("button.rollback[data-alias='online']")
    _dialog_saying(page, "lacks the 'operate' role", what="the reader's refusal")
    # The browser logs each refused call as a failed resource: those two, and nothing else, are expected.
    refused = [p for p in page.problems if "status of 401" in p or "status of 403" in p]
    assert len(refused) == 2, page.problems
    page.problems[:] = [p for p in page.problems if p not in refused]
    with TrainerClient(played.suite["trainer"].address) as trainer:
        moved = [c for c in trainer.alias_history("online") if c.kind == "rollback" and "dashboard" in c.reason]
    assert not moved, "a refused rollback moved the alias"
    _use_token(page, "operator")
    page.click("button.rollback[data-alias='online']")

    def rolled_back():
        with TrainerClient(played.suite["trainer"].address) as trainer:
            return [
                c
                for c in trainer.alias_history("online")
                if c.kind == "rollback" and "dashboard" in c.reason and c.to_version == previous
            ]

    _wait_for(rolled_back, what="the online alias rolled back from the page")
    _wait_for(lambda: page.locator("#versions tr").count() > 2, what="the models page after the rollback")
    assert page.problems == []


def test_an_incident_acknowledged_on_the_page_is_acknowledged_in_the_drift_service(page, played):
    with DriftClient(played.suite["drift"].address) as drift:
        waiting = [i for i in drift.list_incidents(open_only=True) if not i.acknowledged_by]
        assert waiting, "the short plan's event leaves an open incident"
        incident_id = waiting[0].incident_id
        _open(page, "drift")
        button = f"button.acknowledge[data-id='{incident_id}']"
        page.wait_for_selector(button)
        _use_token(page, "operator")
        page.click(button)
        acknowledged = _wait_for(
            lambda: (i := drift.get_incident(incident_id)).acknowledged_by and i, what="the acknowledgement"
        )
    assert acknowledged.acknowledged_by == "dashboard" and acknowledged.acknowledge_note == "looking into it"
    _wait_for(lambda: page.locator(button).count() == 0, what="the page showing it acknowledged")
    assert page.problems == []


def test_bad_requests_get_clear_errors(url):
    def status(path: str, body: bytes | None = None, token: str = "") -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(
            url.rstrip("/") + path, data=body, method="POST" if body else "GET", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    code, body = status("/api/forecasts?store=" + "x" * 5000)
    assert code == 404 and "unknown store" in body["error"] and len(body["error"]) < 200
    code, body = status("/api/rollback", b"not json")
    assert code == 400 and "JSON" in body["error"]
    code, body = status("/api/rollback", b'{"alias": "champion", "to_version": "three"}')
    assert code == 400 and "to_version" in body["error"]
    code, body = status("/api/nothing-here")
    assert code == 404
    # The shared clients report a request the service rejected as a failed precondition.
    code, body = status("/api/incidents/no-such-incident/acknowledge", b"{}")
    assert code == 401 and "token" in body["error"], body
    code, body = status("/api/rollback", b'{"alias": "online"}', token="not-a-token")
    assert code == 401, body
    code, body = status("/api/incidents/no-such-incident/acknowledge", b"{}", token=_token("operator"))
    assert code == 409 and "no-such-incident" in body["error"], body
