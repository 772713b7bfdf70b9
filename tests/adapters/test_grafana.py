"""The Grafana adapter against the fake Grafana (real paths, bodies and status codes).

The adapter is synchronous (httpx), so the fake serves from a thread of its own. Assertions
look at what reached the server too: the token goes in the Authorization header of API
calls and nowhere else (not in a message, a link, or the repr).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.grafana import GrafanaAdapter, GrafanaError, GrafanaNotConfigured, _png_size
from tests.fakes.grafana import PLACEHOLDER_SIZE, TOKEN, FakeGrafana


def seeded(**kwargs: object) -> FakeGrafana:
    fake = FakeGrafana(**kwargs)  # type: ignore[arg-type]
    fake.add_dashboard(
        "node-full",
        "Node Exporter Full",
        [(2, "CPU busy"), (3, "Memory used")],
        folder="Infrastructure",
        tags=["linux"],
        collapsed_row=[(20, "Disk IO")],
    )
    fake.add_dashboard("api-red", "API RED", [(1, "Requests"), (4, "Errors")])
    fake.add_dashboard("k8s-pods", "Kubernetes / Pods", [(7, "Restarts")], folder="Kubernetes")
    return fake


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = seeded()
    with fake.run_in_thread():
        yield fake


@pytest.fixture
def adapter(grafana: FakeGrafana) -> Iterator[GrafanaAdapter]:
    made = GrafanaAdapter(grafana.url, TOKEN)
    yield made
    made.close()


def test_search_lists_dashboards_only_with_absolute_links(adapter, grafana) -> None:
    outcome = adapter.search_dashboards()
    titles = [d["title"] for d in outcome.data]
    assert titles == ["API RED", "Kubernetes / Pods", "Node Exporter Full"]  # no folders
    node = outcome.data[2]
    assert node == {
        "uid": "node-full",
        "title": "Node Exporter Full",
        "folder": "Infrastructure",
        "tags": ["linux"],
        "url": f"{grafana.url}/d/node-full/node-exporter-full",
    }
    assert outcome.data[0]["folder"] == "General"
    assert outcome.request is None
    search = [r for r in grafana.requests if r.path == "/api/search"]
    assert search[-1].query["type"] == "dash-db"
    assert grafana.authorizations() == {f"Bearer {TOKEN}"}


def test_search_by_title(adapter) -> None:
    outcome = adapter.search_dashboards("node")
    assert [d["uid"] for d in outcome.data] == ["node-full"]
    assert outcome.summary == "1 dashboard(s) matching 'node'"
    assert adapter.search_dashboards("nothing-like-this").data == []


def test_a_dashboards_panels_include_those_of_collapsed_rows(adapter, grafana) -> None:
    outcome = adapter.dashboard("node-full")
    data = outcome.data
    assert data["title"] == "Node Exporter Full" and data["folder"] == "Infrastructure"
    assert data["url"] == f"{grafana.url}/d/node-full/node-exporter-full"
    assert [(p["id"], p["title"]) for p in data["panels"]] == [
        (2, "CPU busy"),
        (3, "Memory used"),
        (20, "Disk IO"),
    ]
    assert data["panels"][0]["url"] == f"{grafana.url}/d/node-full/node-exporter-full?viewPanel=2"


def test_render_returns_the_png_asked_for(adapter, grafana) -> None:
    outcome = adapter.render_panel("node-full", 2, slug="node-exporter-full")
    assert _png_size(outcome.data) == (1000, 500)
    [seen] = [r for r in grafana.requests if r.path.startswith("/render/")]
    assert seen.path == "/render/d-solo/node-full/node-exporter-full"
    assert seen.query["panelId"] == "2" and seen.query["from"] == "now-6h"
    assert seen.authorization == f"Bearer {TOKEN}"


def test_without_a_renderer_grafanas_stock_picture_is_not_taken_for_the_panel() -> None:
    fake = seeded(renderer=False)
    with fake.run_in_thread():
        adapter = GrafanaAdapter(fake.url, TOKEN)
        outcome = adapter.render_panel("node-full", 2)
        adapter.close()
    assert outcome.data is None
    assert "image renderer is not installed" in outcome.summary
    assert PLACEHOLDER_SIZE != (1000, 500)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "Grafana needs a token (401): check GRAFANA_TOKEN"),
        ("glsa_wrong", "Grafana refused the token (401): check GRAFANA_TOKEN"),
    ],
)
def test_a_missing_or_wrong_token_is_one_clear_line(grafana, token, expected) -> None:
    adapter = GrafanaAdapter(grafana.url, token)
    with pytest.raises(GrafanaError) as caught:
        adapter.search_dashboards()
    assert str(caught.value) == expected
    assert caught.value.reason == "unauthorized" and not caught.value.transient
    ok, detail = adapter.health()
    assert not ok and detail == expected
    assert "glsa_wrong" not in detail and "glsa_wrong" not in repr(adapter)


def test_404_403_and_5xx(adapter, grafana) -> None:
    with pytest.raises(GrafanaError) as missing:
        adapter.dashboard("gone")
    assert str(missing.value) == "Grafana has no dashboard with uid gone (404)"
    assert missing.value.reason == "not_found"

    grafana.forbid("api-red")
    with pytest.raises(GrafanaError) as forbidden:
        adapter.dashboard("api-red")
    assert forbidden.value.reason == "forbidden" and "(403)" in str(forbidden.value)

    grafana.fail_next(502)
    with pytest.raises(GrafanaError) as bad_gateway:
        adapter.search_dashboards()
    assert bad_gateway.value.transient and bad_gateway.value.status == 502
    assert str(bad_gateway.value) == "Grafana answered 502 for dashboard search: try again later"
    assert adapter.search_dashboards().data  # the next request is served


def test_a_uid_that_is_not_one_sends_nothing(adapter, grafana) -> None:
    before = len(grafana.requests)
    with pytest.raises(GrafanaError):
        adapter.dashboard("../../api/admin/users")
    assert len(grafana.requests) == before


def test_health(adapter, grafana) -> None:
    assert adapter.health() == (True, f"Grafana 10.4.2 at {grafana.url}")
    grafana.database_ok = False
    ok, detail = adapter.health()
    assert not ok and "503" in detail


def test_unreachable_is_transient_and_names_no_secret() -> None:
    from tests.peers.prometheus_stack import free_port

    url = f"http://admin:hunter2@127.0.0.1:{free_port()}"
    adapter = GrafanaAdapter(url, None)
    with pytest.raises(GrafanaError) as caught:
        adapter.search_dashboards()
    assert caught.value.transient and caught.value.reason == "unreachable"
    assert "hunter2" not in str(caught.value) and "admin" not in str(caught.value)
    assert adapter.url.startswith("http://127.0.0.1:")
    ok, detail = adapter.health()
    assert not ok and "hunter2" not in detail


def test_grafana_under_a_sub_path_links_once() -> None:
    fake = seeded(sub_path="/grafana")
    with fake.run_in_thread():
        adapter = GrafanaAdapter(fake.url, TOKEN)
        [hit] = adapter.search_dashboards("API").data
        adapter.close()
    assert fake.url.endswith("/grafana")
    assert hit["url"] == fake.url + "/d/api-red/api-red"


def test_not_an_http_url_is_not_configured() -> None:
    with pytest.raises(GrafanaNotConfigured):
        GrafanaAdapter("grafana.example.com", TOKEN)
