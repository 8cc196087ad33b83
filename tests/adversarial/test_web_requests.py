"""Absurd requests to the web console get a 4xx that says what is wrong, never a 500."""

import pytest

from tests.console.test_web import client


@pytest.mark.parametrize("query", ["since=nan&until=nan", "since=inf&until=-inf",
                                   "since=0&until=1e309", "since=" + "9" * 400])
def test_a_history_range_that_is_no_time_is_refused(tmp_path, query):
    http, _app = client(tmp_path)
    answer = http.get("/api/device/ix20-a/history?" + query)
    assert answer.status_code == 400, answer.text
    assert "Unix seconds" in answer.json()["error"]
    assert http.get("/api/device/ix20-a/history?since=0&until=1e308").status_code == 200
