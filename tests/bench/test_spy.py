"""bench/spy.py: py-spy's raw stacks counted by leaf function and by area."""

from __future__ import annotations

from bench.spy import OTHER, area_of, breakdown

RAW = """\
main (tokensmith:6);run (uvicorn/main.py:1);send (uvicorn/protocols/http/httptools_impl.py:522) 30
main (tokensmith:6);issue (tokensmith/oauth/access_tokens.py:117);sign (tokensmith/jose/signer.py:87) 50
main (tokensmith:6);route (tokensmith/web/endpoints.py:110) 15
main (tokensmith:6);<genexpr> (json/encoder.py:258) 5
not a stack line
"""


def test_samples_are_shared_by_leaf_and_by_area() -> None:
    found = breakdown(RAW)
    assert found["samples"] == 100
    assert found["functions"][0] == {
        "function": "sign (tokensmith/jose/signer.py:87)",
        "share": 0.5,
    }
    assert found["areas"] == {
        "signature (cryptography)": 0.5,
        "HTTP server (uvicorn, httptools, our connection)": 0.3,
        "envelope, routing, forms, responses": 0.15,
        OTHER: 0.05,
    }


def test_areas_are_tried_in_order() -> None:
    assert area_of("sign (tokensmith/jose/signer.py:87)") == "signature (cryptography)"
    assert area_of("verify_jwt (tokensmith/jose/jws.py:60)").startswith("protocol")
    assert area_of("_flush (tokensmith/web/connection.py:297)").startswith("HTTP server")
    assert area_of("judge (tokensmith/runtime/throttle.py:120)") == "limits and lockouts"


def test_nothing_sampled_is_no_share() -> None:
    assert breakdown("") == {"samples": 0, "areas": {}, "functions": []}
