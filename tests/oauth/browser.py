"""A person at a browser: follows the authorization request through our real login and consent forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

_FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@dataclass
class Outcome:
    response: requests.Response

    @property
    def location(self) -> str:
        return self.response.headers["location"]

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.location).query).items()}


class Browser:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def open(self, url: str) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=10)

    def submit(self, page: requests.Response, action: str, **fields: str) -> requests.Response:
        hidden = dict(_FIELD.findall(page.text))
        return self.session.post(
            self.base_url + action, data={**hidden, **fields}, allow_redirects=False, timeout=10
        )

    def authorize(
        self,
        url: str,
        username: str = "alice",
        password: str = "correct horse battery",
        consent: str | None = "allow",
    ) -> Outcome:
        """Open the URL, log in if asked, consent if asked; return the redirect to the client."""
        page = self.open(url)
        if page.status_code == 200 and 'action="/login"' in page.text:
            page = self.submit(page, "/login", username=username, password=password)
        if page.status_code == 200 and 'action="/consent"' in page.text and consent is not None:
            page = self.submit(page, "/consent", decision=consent)
        assert page.status_code == 303, (page.status_code, page.text[:500])
        return Outcome(page)
