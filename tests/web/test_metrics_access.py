"""/metrics on the public listener answers only the bearer of the metrics token (case 67)."""

from __future__ import annotations

import httpx

from tests.support import METRICS_AUTH, METRICS_TOKEN, ServerThread
from tokensmith.settings import Settings


def test_only_the_token_reads_metrics(settings: Settings) -> None:
    with ServerThread(settings) as server, httpx.Client(base_url=server.base_url) as http:
        anonymous = http.get("/metrics")
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_token"
        assert anonymous.headers["www-authenticate"].startswith('Bearer realm="metrics"')
        assert "tokensmith_" not in anonymous.text
        for authorization in (
            "Bearer " + METRICS_TOKEN[:-1],
            "Bearer " + METRICS_TOKEN + "x",
            "Basic " + METRICS_TOKEN,
            METRICS_TOKEN,
            "Bearer",
        ):
            assert http.get("/metrics", headers={"authorization": authorization}).status_code == 401
        # The token is never accepted in the URL either (no ?access_token=, no other name).
        assert http.get("/metrics", params={"token": METRICS_TOKEN}).status_code == 401
        allowed = http.get("/metrics", headers=METRICS_AUTH)
        assert allowed.status_code == 200 and "tokensmith_http_requests_total" in allowed.text
        lower = http.get("/metrics", headers={"authorization": f"bearer {METRICS_TOKEN}"})
        assert lower.status_code == 200


def test_without_a_token_metrics_are_not_served(settings: Settings) -> None:
    unset = settings.model_copy(update={"metrics_token": None})
    with ServerThread(unset) as server:
        response = httpx.get(server.base_url + "/metrics", headers=METRICS_AUTH)
        assert response.status_code == 404 and response.json()["error"] == "not_found"
