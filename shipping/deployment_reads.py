"""What One Deploy reads back from the SCM site and ARM, each answer bounded.

The deployer's ARM token goes only to the site a request is for (the SCM site's own URLs, ARM's
own `nextLink`s); answers are read up to `MAX_ANSWER_BYTES`, logs and listings up to a number of
entries and pages, so a misbehaving endpoint cannot make a deployment hold unbounded memory.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core.credentials import AccessToken, TokenCredential

ARM_SCOPE = "https://management.azure.com/.default"
WEB_API_VERSION = "2024-04-01"
"""Microsoft.Web API version of the functions listing (WebApps_ListFunctions)."""
MAX_ANSWER_BYTES = 1 << 20  # a deployment record, a log page, a functions page
MAX_LOG_LINES = 30
_MAX_LOG_ENTRIES = 200
LOG_READ_SECONDS = 60.0
"""Reading a log and its detail pages (up to 31 GETs) stops after this long in all."""
_MAX_FUNCTION_PAGES = 10
_MAX_RETRY_AFTER = 10.0
_TOKEN_REFRESH_MARGIN = 300  # seconds before expiry at which a cached token is renewed


class BearerToken:
    """An ARM token fetched on first use and renewed shortly before it expires."""

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential
        self._token: AccessToken | None = None

    def headers(self) -> dict[str, str]:
        if self._token is None or self._token.expires_on - time.time() < _TOKEN_REFRESH_MARGIN:
            self._token = self._credential.get_token(ARM_SCOPE)
        return {"Authorization": f"Bearer {self._token.token}"}


class Reader:
    """GETs with the deployer's token, a (connect, read) timeout and a bounded body."""

    def __init__(
        self, session: requests.Session, token: BearerToken, timeout: tuple[float, float]
    ) -> None:
        self.session, self.token, self.timeout = session, token, timeout

    def get(
        self, url: str, params: Mapping[str, str] | None = None
    ) -> tuple[requests.Response, str]:
        """The response (headers, status) and its body text, read up to the bound."""
        with self.session.get(
            url,
            params=params,
            headers={**self.token.headers(), "Accept": "application/json"},
            timeout=self.timeout,
            stream=True,
        ) as response:
            return response, read_text(response)

    def get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        response, text = self.get(url, params)
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}: {excerpt(text)}")
        return json.loads(text)

    def log_lines(self, base: str, deployment: Mapping[str, Any]) -> list[str]:
        """The deployment log's last lines, with their details; best effort, bounded."""
        log_url = deployment.get("log_url")
        if not same_site(log_url, base):
            log_url = f"{base}/api/deployments/{deployment.get('id')}/log"
        lines: list[str] = []
        deadline = time.monotonic() + LOG_READ_SECONDS
        try:
            for entry in self._entries(log_url)[-MAX_LOG_LINES:]:
                lines.append(_log_line(entry))
                details_url = entry.get("details_url")
                if not same_site(details_url, base):
                    continue
                if time.monotonic() > deadline:
                    cut = f"  (details not read: the log took over {LOG_READ_SECONDS:g} s)"
                    lines.extend([] if cut in lines else [cut])
                    continue
                lines.extend("  " + _log_line(d) for d in self._entries(details_url))
        except (requests.RequestException, ValueError) as error:
            lines.append(f"(could not read the deployment log at {log_url}: {excerpt(str(error))})")
        if len(lines) > MAX_LOG_LINES:
            lines = ["...", *lines[-MAX_LOG_LINES:]]
        return lines or ["(the deployment log is empty)"]

    def functions(self, url: str, arm_endpoint: str) -> set[str]:
        """Names and HTTP routes of an app's functions as ARM lists them (all pages, bounded).

        The Python v2 model names a function after its Python function unless told otherwise,
        and its route is what clients call, so either identifies it; ARM gives the name as
        `{app}/{function}` and the route in `properties.invoke_url_template`.
        """
        found: set[str] = set()
        next_url: str | None = url
        params: dict[str, str] | None = {"api-version": WEB_API_VERSION}
        for _page in range(_MAX_FUNCTION_PAGES):
            if next_url is None:
                break
            page = self.get_json(next_url, params)
            if not isinstance(page, dict):
                raise ValueError("the functions listing is not a JSON object")
            for envelope in page.get("value") or ():
                if not isinstance(envelope, dict):
                    continue
                found.add(str(envelope.get("name") or "").rsplit("/", 1)[-1])
                template = (envelope.get("properties") or {}).get("invoke_url_template")
                path = urlsplit(template).path if isinstance(template, str) else ""
                if path.startswith("/api/"):
                    found.add(path.removeprefix("/api/"))
            link = page.get("nextLink")
            next_url = link if same_site(link, arm_endpoint) else None  # only ARM gets the token
            params = None  # a nextLink carries its own query
        found.discard("")
        return found

    def _entries(self, url: str) -> list[dict[str, Any]]:
        entries = self.get_json(url)
        if not isinstance(entries, list):
            raise ValueError("the log is not a JSON list")
        return [entry for entry in entries[-_MAX_LOG_ENTRIES:] if isinstance(entry, dict)]


def read_text(response: requests.Response, limit: int = MAX_ANSWER_BYTES) -> str:
    """The body of a streamed answer, read up to `limit` bytes (a longer one is cut, and then
    fails as JSON)."""
    body = response.raw.read(limit + 1, decode_content=True) or b""
    return body[:limit].decode(response.encoding or "utf-8", errors="replace")


def retry_after(response: requests.Response, default: float) -> float:
    """The server's `Retry-After` in seconds (azd honours it), capped; else `default`."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return default
    if not math.isfinite(seconds):
        return default  # float() takes "nan", which time.sleep() refuses
    return min(max(seconds, default), _MAX_RETRY_AFTER)


def excerpt(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def same_site(url: Any, base: str) -> bool:
    """Only URLs on the same site get the bearer token."""
    return isinstance(url, str) and url.startswith(base + "/")


def _log_line(entry: Mapping[str, Any]) -> str:
    return excerpt(f"{entry.get('log_time') or ''} {entry.get('message') or ''}".strip())
