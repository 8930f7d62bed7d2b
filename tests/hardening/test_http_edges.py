"""HTTP-level behaviour of every answer: security headers on the explorer's pages and
`Cache-Control: no-store` everywhere (answers may hold what a token protects), and HEAD served
as the GET it asks about (it was a 405 whose own Allow header listed HEAD)."""

import pytest

from tests.api.conftest import READ, Server


@pytest.mark.parametrize("path", ["/ui/", "/ui/jobs"])
def test_explorer_pages_carry_security_headers(server: Server, path: str) -> None:
    with server.client(READ) as c:
        r = c.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "http" not in csp and "*" not in csp  # no source outside this server


def test_api_answers_are_not_cached(server: Server) -> None:
    with server.client(READ) as c:
        r = c.get("/v1/datasets")
        assert r.headers["cache-control"] == "no-store"
        assert "x-frame-options" not in r.headers  # JSON is never framed; pages only
        assert c.get("/v1/datasets/999999").headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/v1/datasets", "/ui/"])
def test_head_is_served_like_get_without_a_body(server: Server, path: str) -> None:
    with server.client(READ) as c:
        got = c.get(path)
        head = c.head(path)
    assert head.status_code == got.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["content-type"] == got.headers["content-type"]


def test_head_of_a_missing_thing_is_its_404(server: Server) -> None:
    with server.client(READ) as c:
        r = c.head("/v1/datasets/999999")
    assert r.status_code == 404 and r.content == b""
