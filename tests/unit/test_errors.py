"""The error vocabulary's helpers for provider plugins."""

from __future__ import annotations

import email.utils
import time

from llm_router.errors import RateLimitError, ServerError, causes, retry_after_from_headers, scrub


def test_retry_after_forms() -> None:
    assert retry_after_from_headers({"retry-after": "7"}) == 7.0
    assert retry_after_from_headers({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_from_headers({"retry-after-ms": "soon", "retry-after": "2"}) == 2.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after_from_headers({"retry-after": later}) or 0) <= 31
    assert retry_after_from_headers({}) is None
    assert retry_after_from_headers({"retry-after": "not a date"}) is None  # unreadable: no advice, no crash
    assert retry_after_from_headers({"retry-after": "-3"}) == 0.0


def test_scrub_and_error_text() -> None:
    assert scrub("bad key sk-secret-123 given", "sk-secret-123") == "bad key *** given"
    assert scrub("nothing to hide", None) == "nothing to hide"
    err = RateLimitError(
        "slow down", retry_after_s=2.0, provider="openai", model="gpt-4o", request_id="req_1", status_code=429
    )
    assert str(err) == "openai/gpt-4o: rate_limit: slow down (HTTP 429, request id req_1)"
    assert err.retryable and ServerError.retryable


def test_causes_walks_the_raise_from_chain() -> None:
    transport = OSError("connection refused")
    wrapped = RuntimeError("connect timeout")
    wrapped.__cause__ = transport
    outer = ValueError("APITimeoutError")
    outer.__cause__ = wrapped
    outer.__context__ = KeyError("only a context, not a cause")
    assert list(causes(outer)) == [wrapped, transport]
    assert list(causes(transport)) == []
    transport.__cause__ = outer  # a loop ends at the first repeat
    assert list(causes(outer)) == [wrapped, transport]
