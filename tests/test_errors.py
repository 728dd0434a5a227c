"""The error table is the one source of every status: each class agrees with it, and every code
the code base sends is one of its rows."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import tokensmith
from tokensmith import errors
from tokensmith.errors import ERROR_CODES, OAuthError, TokensmithError

SRC = Path(tokensmith.__file__).parent

# Issue #13: every code of RFC 6749, 6750, 7591, 8628, 9101/9126, 9449, OIDC Core and RFC 8707
# that Tokensmith sends or will send.
STANDARD = {
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope", "access_denied", "unsupported_response_type",
    "server_error", "temporarily_unavailable", "invalid_token", "insufficient_scope",
    "invalid_redirect_uri", "invalid_client_metadata", "invalid_software_statement",
    "unapproved_software_statement", "authorization_pending", "slow_down", "expired_token",
    "invalid_request_uri", "invalid_request_object", "request_not_supported",
    "request_uri_not_supported", "invalid_dpop_proof", "use_dpop_nonce", "login_required",
    "consent_required", "interaction_required", "invalid_target",
}  # fmt: skip


def _all_modules() -> None:
    for module in pkgutil.walk_packages([str(SRC)], "tokensmith."):
        # Not the CLI's entry point (it runs), nor the migrations (Alembic runs them).
        if not module.name.endswith("__main__") and ".migrations" not in module.name:
            importlib.import_module(module.name)


def _subclasses(root: type) -> set[type]:
    found: set[type] = set()
    pending = [root]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def test_the_table() -> None:
    assert set(ERROR_CODES) >= STANDARD
    for code, row in ERROR_CODES.items():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code), code
        assert 400 <= row.status <= 599, code
        assert row.spec, code
        # What a row is sent as is itself a row: the wire only ever carries codes of the table.
        assert row.sent_as is None or (row.sent_as in ERROR_CODES and row.sent_as != code), code
    with pytest.raises(TypeError):
        ERROR_CODES["new"] = ERROR_CODES["invalid_request"]  # type: ignore[index]


def test_every_class_takes_its_status_from_the_table() -> None:
    _all_modules()
    classes = _subclasses(OAuthError) | {OAuthError}
    assert len(classes) > 40  # errors.py, the guard, bearer, API keys, the gateway, ...
    for cls in classes:
        row = ERROR_CODES[cls.code]
        assert cls.status == row.status, cls
        assert cls.error == (row.sent_as or cls.code), cls


def test_a_class_names_a_code_never_a_status() -> None:
    with pytest.raises(TypeError, match="set code"):

        class Teapot(OAuthError):
            status = 418

    with pytest.raises(TypeError, match="set code"):

        class Renamed(OAuthError):
            code = "invalid_request"
            error = "something_else"

    with pytest.raises(ValueError, match="ERROR_CODES"):

        class Unknown(OAuthError):
            code = "not_in_the_table"


def test_each_standard_code_has_its_class_in_errors() -> None:
    classes = {
        value.code: value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, OAuthError) and "code" in vars(value)
    }
    assert set(classes) >= STANDARD
    for code in STANDARD:
        assert classes[code].__name__ in errors.__all__
        assert classes[code]("x").error == code


def test_a_code_chosen_at_run_time_still_comes_from_the_table() -> None:
    error = OAuthError("too big", code="payload_too_large")
    assert (error.code, error.error, error.status) == ("payload_too_large", "invalid_request", 413)
    assert OAuthError.status == 400  # the instance, not the class, took the code
    with pytest.raises(ValueError, match="ERROR_CODES"):
        OAuthError("x", code="no_such_code")


def test_one_root() -> None:
    _all_modules()
    from tokensmith.apikeys.verifier import ApiKeyRefused
    from tokensmith.cli.output import CommandError
    from tokensmith.gateway.proxy import Refusal
    from tokensmith.guard import GuardError, InvalidToken, MissingCredential
    from tokensmith.jose.jws import InvalidSignature
    from tokensmith.jose.keyring import KeyRingError, RotationRefused
    from tokensmith.oauth import authorization
    from tokensmith.web.bearer import BearerRefused

    for protocol in (GuardError, InvalidToken, MissingCredential, BearerRefused, ApiKeyRefused):
        assert issubclass(protocol, OAuthError)
    assert issubclass(Refusal, OAuthError)
    for other in (CommandError, InvalidSignature, KeyRingError, RotationRefused):
        assert issubclass(other, TokensmithError) and not issubclass(other, OAuthError)
    # The authorization endpoint's two ways out, under the same root, by their old names too.
    assert authorization.PageError is errors.PageError
    assert authorization.RedirectError is errors.RedirectError
    page = errors.PageError("Unknown application", "No application with that client_id.")
    assert isinstance(page, OAuthError) and page.status == 400
    assert page.description == page.message
    back = errors.RedirectError(errors.LoginRequired("log in"), "https://app/cb", "s")
    assert isinstance(back, TokensmithError) and not isinstance(back, OAuthError)
    assert back.error.error == "login_required"


def test_api_key_refusals_by_reason() -> None:
    from tokensmith.apikeys.verifier import ApiKeyRefused

    expected = {
        "malformed": ("invalid_key", 401),
        "invalid": ("invalid_key", 401),
        "expired": ("invalid_key", 401),
        "revoked": ("invalid_key", 401),
        "forbidden_source": ("forbidden_source", 403),
        "rate_limited": ("rate_limited", 429),
        "locked_out": ("rate_limited", 429),
    }
    for reason, (error, status) in expected.items():
        refused = ApiKeyRefused(reason)  # type: ignore[arg-type]
        assert (refused.error, refused.status) == (error, status)
        assert refused.description == str(refused)


# -- every code the source sends is a row of the table -----------------------------------------

_CODE_FIRST = {"BearerRefused", "Refusal", "bearer_error"}


def _codes_in_source() -> tuple[set[str], set[str]]:
    """(codes, wire errors) written as literals anywhere in src/tokensmith."""
    codes: set[str] = set()
    sent: set[str] = set()

    def literal(node: ast.AST | None) -> str | None:
        return (
            node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
        )

    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in _CODE_FIRST and node.args and (value := literal(node.args[0])):
                    codes.add(value)
                for keyword in node.keywords:
                    value = literal(keyword.value)
                    if value is None:
                        continue
                    if keyword.arg == "code":
                        codes.add(value)
                    elif keyword.arg == "error" and name == "render_challenge":
                        sent.add(value)
            elif isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if (
                        isinstance(statement, ast.Assign)
                        and [getattr(t, "id", None) for t in statement.targets] == ["code"]
                        and (value := literal(statement.value))
                    ):
                        codes.add(value)
            elif isinstance(node, ast.Dict):
                for key, value_node in zip(node.keys, node.values, strict=True):
                    if literal(key) == "error" and (value := literal(value_node)):
                        sent.add(value)
    return codes, sent


def test_every_code_the_source_raises_is_in_the_table() -> None:
    from tokensmith.apikeys import verifier

    codes, sent = _codes_in_source()
    assert {"missing_credential", "payload_too_large", "bad_gateway", "login_required"} <= codes
    assert set(verifier._CODES.values()) | codes <= set(ERROR_CODES)
    wire = {row.sent_as or code for code, row in ERROR_CODES.items()}
    assert "invalid_token" in sent
    assert sent <= wire
