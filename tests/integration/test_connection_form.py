"""The HubSpot connection form in Airflow's real UI, in headless Chromium driven by Playwright.

An api-server (simple auth manager, everyone admin) serves the UI with ``[core] test_connection =
Enabled``. The test adds a HubSpot connection through the form, checks the fields the provider
declares (labels, placeholders, password inputs, hidden standard fields), saves it, and presses the
Test button, which makes the api-server call ``HubSpotHook.test_connection()`` against the HubSpot
stand-in: success for the stand-in's token, HubSpot's refusal for a wrong one.

Screenshots go to ``test-artifacts/`` (the form's two sections, and each test result) for a person
to look at.
Debian's Chromium is used (``.ci/run`` installs it); no browser is downloaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_hubspot_assoc.testing import HubSpotStandIn, StandInConfig
from tests.integration.airflow_cluster import AirflowCluster, airflow_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: Generous waits: other test suites share this 2-core machine.
UI_TIMEOUT_MS = 60_000
PORTAL_ID = "12345678"


@pytest.fixture(scope="module")
def standin() -> Iterator[HubSpotStandIn]:
    with HubSpotStandIn(StandInConfig()) as hs:
        yield hs


@pytest.fixture(scope="module")
def cluster() -> Iterator[AirflowCluster]:
    with airflow_cluster(
        components=("api-server",), env={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def page(cluster: AirflowCluster) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1900})
            tab.set_default_timeout(UI_TIMEOUT_MS)
            # Simple auth with all-admins: this page sets the login cookie and lands on the UI.
            tab.goto(cluster.api_url + "/auth/token/login")
            yield tab
        finally:
            browser.close()


def open_add_form(page: Any, cluster: AirflowCluster) -> None:
    """Open Admin > Connections > Add Connection and pick the HubSpot type."""
    page.goto(cluster.api_url + "/connections")
    page.get_by_role("button", name="Add Connection").click()
    page.get_by_role("combobox").fill("HubSpot")
    page.get_by_role("option", name="HubSpot", exact=True).click()
    page.get_by_label("API host").wait_for()


def extra_field(page: Any, key: str, label: str) -> Any:
    """The input of an extra field, after checking its label (Airflow 3.3.2's form does not tie the
    two together with ``for``/``id``, so the label cannot find the input)."""
    field = page.locator(f'input[name="element_{key}"]')
    group = page.get_by_role("group").filter(has=field)
    assert group.locator("label").inner_text().strip() == label
    return field


def fill_and_save(page: Any, conn_id: str, host: str, token: str, port: str, portal: str = "") -> None:
    page.get_by_label("Connection ID").fill(conn_id)
    page.get_by_label("API host").fill(host)
    page.get_by_label("Private app access token").fill(token)
    page.get_by_label(re.compile(r"^Port")).fill(port)
    if portal:
        page.get_by_role("button", name="Extra Fields", exact=True).click()
        extra_field(page, "portal_id", "Portal (hub) ID").fill(portal)
    page.get_by_role("button", name="Save").click()
    page.get_by_role("row").filter(has_text=conn_id).wait_for()


def press_test(page: Any, conn_id: str) -> dict[str, Any]:
    """Press the row's Test button; return the api-server's answer and wait for the toast."""
    row = page.get_by_role("row").filter(has_text=conn_id)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    result = dict(answer.value.json())
    page.get_by_text(result.get("message") or "", exact=False).first.wait_for()
    page.wait_for_timeout(1_000)  # let the toast finish sliding in before a screenshot
    return result


def test_the_form_shows_the_hubspot_fields_and_hides_the_others(page, cluster):
    open_add_form(page, cluster)
    host = page.get_by_label("API host")
    token = page.get_by_label("Private app access token")
    port = page.get_by_label("Port (443 for HubSpot)")
    assert host.get_attribute("placeholder") == "https://api.hubapi.com"
    assert token.get_attribute("type") == "password"
    assert (token.get_attribute("placeholder") or "").startswith("pat-na1-")
    # Airflow 3.3.2's Test button sends port 0 without a port (apache/airflow#73298): the field stays.
    assert port.is_visible()
    assert (port.get_attribute("placeholder") or "").startswith("443")
    standard = page.get_by_role("region", name="Standard Fields")
    for unused in ("Login", "Schema"):
        assert standard.get_by_label(unused, exact=True).count() == 0, f"{unused} should be hidden"
    page.get_by_label("Connection ID").fill("hubspot_default")
    page.get_by_role("dialog").screenshot(path=str(ARTIFACTS / "connection-form-standard-fields.png"))

    page.get_by_role("button", name="Extra Fields", exact=True).click()
    api_version = extra_field(page, "api_version", "API version")
    assert api_version.input_value() == "v4"
    assert api_version.get_attribute("placeholder"), "examples give the field a placeholder"
    assert page.get_by_text("v4 (ends 2027-03-30) or a dated version").is_visible()
    assert extra_field(page, "client_id", "OAuth client ID").is_visible()
    assert extra_field(page, "portal_id", "Portal (hub) ID").is_visible()
    assert extra_field(page, "timeout", "Read timeout (seconds)").input_value() == "30"
    for key, label in (("client_secret", "OAuth client secret"), ("refresh_token", "OAuth refresh token")):
        assert extra_field(page, key, label).get_attribute("type") == "password", label

    extra_field(page, "portal_id", "Portal (hub) ID").fill(PORTAL_ID)
    page.get_by_role("dialog").screenshot(path=str(ARTIFACTS / "connection-form-extra-fields.png"))


def test_testing_a_saved_connection_succeeds_against_the_standin(page, cluster, standin):
    page.set_viewport_size({"width": 1280, "height": 800})  # the toasts sit at the bottom
    open_add_form(page, cluster)
    port = standin.url.rsplit(":", 1)[1]
    fill_and_save(page, "hubspot_ui", standin.url, standin.token, port, portal=PORTAL_ID)
    saved = cluster.api("GET", "/api/v2/connections/hubspot_ui")
    assert (saved["conn_type"], saved["host"], saved["port"]) == ("hubspot", standin.url, int(port))
    assert json.loads(saved["extra"])["portal_id"] == PORTAL_ID
    assert saved["password"] != standin.token, "the API must not hand the token back"

    before = standin.stats.requests_total
    result = press_test(page, "hubspot_ui")
    assert result["status"] is True, result
    assert result["message"].startswith(f"Connected to {standin.url} (API v4)")
    assert standin.stats.requests_total > before, "the api-server called the stand-in"
    page.get_by_text("Test Connection Successful").wait_for()
    page.screenshot(path=str(ARTIFACTS / "connection-test-success.png"))


def test_testing_a_wrong_token_says_what_to_fix(page, cluster, standin):
    page.set_viewport_size({"width": 1280, "height": 800})  # the toasts sit at the bottom
    open_add_form(page, cluster)
    port = standin.url.rsplit(":", 1)[1]
    fill_and_save(page, "hubspot_wrong_token", standin.url, "pat-na1-not-a-real-token", port)
    result = press_test(page, "hubspot_wrong_token")
    assert result["status"] is False, result
    message = result["message"]
    assert "HubSpot refused the credentials" in message and "INVALID_AUTHENTICATION" in message
    assert "Check the private-app token" in message
    assert "pat-na1-not-a-real-token" not in message
    page.get_by_text("Test Connection Failed").wait_for()
    page.screenshot(path=str(ARTIFACTS / "connection-test-wrong-token.png"))
