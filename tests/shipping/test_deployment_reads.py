"""The deployer's ARM token goes only to the site a request is for: never to a host named in an
answer (`nextLink`, `log_url`, `details_url`) nor across a redirect to another host."""

from __future__ import annotations

import io
import json
from typing import Any

import requests
import requests.adapters
import urllib3
from azure.core.credentials import AccessToken

from shipping import deployment_reads
from shipping.deployment_reads import LOG_READ_SECONDS, BearerToken, Reader

ARM = "https://management.azure.com"
SCM = "https://app.scm.azurewebsites.net"
TOKEN = "eyJ.deployer-token.sig"


class Recorder(requests.adapters.BaseAdapter):
    """Answers from a table (url without query -> (status, headers, body)); records requests."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, str], Any]]) -> None:
        super().__init__()
        self.answers = answers
        self.seen: list[tuple[str, str | None]] = []

    def send(self, request: requests.PreparedRequest, **_kwargs: Any) -> requests.Response:
        url = str(request.url).split("?", 1)[0]
        self.seen.append((url, request.headers.get("Authorization")))
        status, headers, body = self.answers.get(url, (404, {}, {"error": "none"}))
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response.url = str(request.url)
        response.request = request
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(json.dumps(body).encode()), preload_content=False, status=status
        )
        return response

    def close(self) -> None:
        pass


class Credential:
    def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, 2**31)


def reader(answers: dict[str, tuple[int, dict[str, str], Any]]) -> tuple[Reader, Recorder]:
    session = requests.Session()
    session.trust_env = False
    recorder = Recorder(answers)
    session.mount("https://", recorder)
    return Reader(session, BearerToken(Credential()), (1, 1)), recorder


def tokens_sent_outside(recorder: Recorder, *sites: str) -> list[str]:
    return [
        url
        for url, auth in recorder.seen
        if auth and not any(url.startswith(site + "/") for site in sites)
    ]


def test_a_next_link_on_another_host_is_not_followed() -> None:
    functions = f"{ARM}/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/a/functions"
    for link in (
        "https://evil.example/steal",
        "https://management.azure.com.evil.example/steal",
        "https://management.azure.com@evil.example/steal",
        "http://management.azure.com/steal",
    ):
        read, recorder = reader(
            {
                functions: (200, {}, {"value": [{"name": "a/list"}], "nextLink": link}),
                link.split("?")[0]: (200, {}, {"value": [{"name": "a/stolen"}]}),
            }
        )
        assert read.functions(functions, ARM) == {"list"}
        assert [url for url, _ in recorder.seen] == [functions]


def test_log_and_details_urls_on_another_host_get_no_token() -> None:
    record = {"id": "d1", "log_url": "https://evil.example/log"}
    own_log = f"{SCM}/api/deployments/d1/log"
    read, recorder = reader(
        {
            own_log: (
                200,
                {},
                [{"log_time": "t", "message": "failed", "details_url": "https://evil.example/d"}],
            )
        }
    )
    lines = read.log_lines(SCM, record)
    assert lines == ["t failed"]
    assert [url for url, _ in recorder.seen] == [own_log]


def test_a_redirect_to_another_host_drops_the_token() -> None:
    functions = f"{ARM}/subscriptions/s/functions"
    read, recorder = reader(
        {
            functions: (302, {"Location": "https://evil.example/steal"}, {}),
            "https://evil.example/steal": (200, {}, {"value": []}),
        }
    )
    read.get(functions)
    assert [url for url, _ in recorder.seen] == [functions, "https://evil.example/steal"]
    assert tokens_sent_outside(recorder, ARM) == []
    assert recorder.seen[0][1] == f"Bearer {TOKEN}"


def test_a_retry_after_that_is_not_a_finite_number_is_ignored() -> None:
    """float() accepts "nan", and time.sleep(nan) raises: the poll loop would end in a bare
    ValueError instead of polling again."""
    from shipping.deployment_reads import retry_after

    for value in ("nan", "NaN", "inf", "-inf", "soon", ""):
        response = requests.Response()
        response.headers["Retry-After"] = value
        delay = retry_after(response, 1.0)
        assert 1.0 <= delay <= 10.0, (value, delay)


def test_reading_a_log_stops_fetching_details_when_its_time_is_up(monkeypatch) -> None:
    # Each detail page may take a whole read timeout; 30 of them must not add up unbounded.
    own_log = f"{SCM}/api/deployments/d1/log"
    entries = [
        {"log_time": f"t{i}", "message": "step", "details_url": f"{SCM}/api/details/{i}"}
        for i in range(5)
    ]
    answers = {own_log: (200, {}, entries)}
    answers.update({f"{SCM}/api/details/{i}": (200, {}, [{"message": "detail"}]) for i in range(5)})
    read, recorder = reader(answers)
    now = iter(range(0, 10_000, 25))  # every look at the clock: 25 s later
    monkeypatch.setattr(deployment_reads.time, "monotonic", lambda: float(next(now)))
    lines = read.log_lines(SCM, {"id": "d1"})
    fetched = [url for url, _ in recorder.seen]
    assert fetched == [own_log, f"{SCM}/api/details/0", f"{SCM}/api/details/1"]
    cut = f"  (details not read: the log took over {LOG_READ_SECONDS:g} s)"
    assert lines == [
        *("t0 step", "  detail", "t1 step", "  detail"),
        *("t2 step", cut, "t3 step", "t4 step"),
    ]
