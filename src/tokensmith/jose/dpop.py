"""DPoP proofs (RFC 9449): check one, make one, and the thumbprint and hash that bind tokens.

Pure functions over joserfc and ``cryptography``: no clock, no storage. ``verify_proof`` runs the
checks of RFC 9449 §4.3 that need no state; the caller owns the two that do (step 11, the
``jti`` replay check, and step 10, the server nonce) and gets the proof's ``jti`` and ``nonce``
back for them. The key that verifies a proof is the one the proof carries, so the checks on that
key (public only, a known type, big enough, fitting the algorithm) come before the signature.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import warnings
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from tokensmith.core.secrets import (
    b64url,
    b64url_decode,
    b64url_json,
    constant_time_equals,
    random_token,
)

__all__ = [
    "DPOP_ALGORITHMS",
    "MAX_PROOF_BYTES",
    "DpopError",
    "DpopProof",
    "access_token_hash",
    "generate_proof_key",
    "jwk_thumbprint",
    "make_proof",
    "normalize_htu",
    "public_jwk",
    "verify_proof",
]

# RFC 9449 §4.3 step 5: asymmetric only, never "none" or a MAC.
DPOP_ALGORITHMS: Final[tuple[str, ...]] = (
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "RS256",
    "EdDSA",
)
MAX_PROOF_BYTES: Final = 8192
_MAX_JTI = 256
_MIN_RSA_BITS = 2048
_MAX_RSA_BITS = 8192

# The key type (and EC/OKP curve) each algorithm signs with.
_KEY_FOR_ALG: Final[dict[str, tuple[str, str | None]]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "RS256": ("RSA", None),
    "EdDSA": ("OKP", "Ed25519"),
}
# RFC 7638 §3.2: the required public members, which are also all a proof's key may carry.
_REQUIRED_MEMBERS: Final[dict[str, tuple[str, ...]]] = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}
# Private members of RFC 7518 §6.2.2, §6.3.2, §6.4 and RFC 8037 §2.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_FORBIDDEN_HEADERS: Final = frozenset({"crit", "b64", "zip", "enc", "jku", "x5u", "x5c"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _registry(alg: str) -> JWSRegistry:
    # joserfc caps a header at 512 bytes; a proof's header carries its key (an RSA one is larger).
    registry = JWSRegistry(algorithms=[alg])
    registry.max_header_length = MAX_PROOF_BYTES
    return registry


_REGISTRIES: Final = {alg: _registry(alg) for alg in DPOP_ALGORITHMS}


class DpopError(Exception):
    """A proof was refused; the message names the failed check and never echoes the proof."""


@dataclass(frozen=True, slots=True)
class DpopProof:
    jkt: str
    jti: str
    iat: int
    htm: str
    htu: str
    nonce: str | None
    ath: str | None
    alg: str


def normalize_htu(url: str) -> str:
    """The form two ``htu`` values are compared in (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2-6.2.3):
    scheme and host lowercased, default port dropped, query and fragment dropped, empty path "/",
    percent-encodings uppercased and unreserved ones decoded, dot segments removed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DpopError("htu is not a valid URL") from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        raise DpopError("htu must be an absolute http(s) URL without user information")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_PERCENT.sub(_normalize_escape, parts.path)) or "/"
    return f"{scheme}://{netloc}{path}"


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url: the value of ``cnf.jkt`` (RFC 9449 §6.1)."""
    kty = jwk.get("kty")
    members = _REQUIRED_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise DpopError("jwk has an unsupported key type")
    values = {name: jwk.get(name) for name in members}
    if not all(isinstance(value, str) and value for value in values.values()):
        raise DpopError("jwk lacks a required member")
    canonical = json.dumps(values, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """The ``ath`` claim (RFC 9449 §4.2): base64url of the SHA-256 of the token's ASCII bytes."""
    try:
        data = token.encode("ascii")
    except UnicodeEncodeError:
        raise DpopError("access token is not ASCII") from None
    return b64url(hashlib.sha256(data).digest())


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: int,
    max_age: int,
    max_future: int = 5,
    access_token: str | None = None,
    algorithms: Collection[str] = DPOP_ALGORITHMS,
) -> DpopProof:
    """Check a ``DPoP`` header value against the request it came with (RFC 9449 §4.3 steps 1-9
    and 12); raise ``DpopError`` on the first failed check. Replay and nonce are the caller's."""
    header, claims = _parse(proof)
    alg = header.get("alg")
    if header.get("typ") != "dpop+jwt":
        raise DpopError("typ must be dpop+jwt")
    if not isinstance(alg, str) or alg not in algorithms or alg not in _KEY_FOR_ALG:
        raise DpopError("alg is not an accepted asymmetric algorithm")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise DpopError("the jwk header is missing")
    key = _public_key(jwk, alg)
    _verify_signature(proof, key, alg)
    _check_claims(claims, method=method, url=url, now=now, max_age=max_age, max_future=max_future)
    ath = claims.get("ath")
    if access_token is not None:
        expected = access_token_hash(access_token)
        if not isinstance(ath, str) or not constant_time_equals(ath, expected):
            raise DpopError("ath is missing or does not match the access token")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise DpopError("nonce must be a string")
    return DpopProof(
        jkt=jwk_thumbprint(jwk),
        jti=claims["jti"],
        iat=claims["iat"],
        htm=claims["htm"],
        htu=claims["htu"],
        nonce=nonce,
        ath=ath if isinstance(ath, str) else None,
        alg=alg,
    )


def make_proof(
    private_jwk: Mapping[str, Any] | ECKey | OKPKey | RSAKey,
    *,
    method: str,
    url: str,
    now: int,
    access_token: str | None = None,
    nonce: str | None = None,
    alg: str = "ES256",
) -> str:
    """A proof for one request (RFC 9449 §4.2), with a fresh random ``jti``."""
    key = _import_private(private_jwk)
    public = public_jwk(key.as_dict(private=False))
    expected_kty, curve = _KEY_FOR_ALG.get(alg, ("", None))
    fits = public["kty"] == expected_kty and (curve is None or public.get("crv") == curve)
    if alg not in _REGISTRIES or not fits:
        raise ValueError(f"the key does not fit alg {alg!r}")
    claims: dict[str, Any] = {
        "jti": random_token(16),
        "htm": method,
        "htu": normalize_htu(url),
        "iat": now,
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": public}
    payload = json.dumps(claims, separators=(",", ":"))
    with _eddsa_allowed(alg):
        return jws.serialize_compact(header, payload, key, registry=_REGISTRIES[alg])


def generate_proof_key(alg: str = "ES256") -> dict[str, Any]:
    """A new private JWK (with its ``alg``) for signing proofs under ``alg``."""
    kty, curve = _KEY_FOR_ALG.get(alg, ("", None))
    key: ECKey | OKPKey | RSAKey
    if kty == "EC":
        key = ECKey.generate_key(curve)
    elif kty == "OKP":
        key = OKPKey.generate_key("Ed25519")
    elif kty == "RSA":
        key = RSAKey.generate_key(3072)
    else:
        raise ValueError(f"unsupported DPoP algorithm {alg!r}")
    return {**key.as_dict(private=True), "alg": alg}


def public_jwk(private_jwk: Mapping[str, Any]) -> dict[str, Any]:
    """The public part of a JWK: its RFC 7638 members, plus ``alg`` when it has one."""
    kty = private_jwk.get("kty")
    members = _REQUIRED_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise ValueError("unsupported key type")
    public = {name: private_jwk[name] for name in members if name in private_jwk}
    if isinstance(private_jwk.get("alg"), str):
        public["alg"] = private_jwk["alg"]
    return public


def _parse(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 1-3: one well-formed compact JWS of bounded size with a JSON object on each side."""
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_BYTES:
        raise DpopError("proof is too large")
    segments = proof.split(".")
    if len(segments) != 3 or not all(segments):
        raise DpopError("proof is not one compact JWS")
    try:
        header, claims = b64url_json(segments[0]), b64url_json(segments[1])
    except (ValueError, UnicodeDecodeError):
        raise DpopError("proof is not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise DpopError("proof header and claims must be JSON objects")
    present = _FORBIDDEN_HEADERS.intersection(header)
    if present:
        raise DpopError(f"proof header carries {sorted(present)[0]!r}, which is not accepted")
    return header, claims


def _public_key(jwk: dict[str, Any], alg: str) -> ECKey | OKPKey | RSAKey:
    """Step 7: a public key only, of the type and size the algorithm signs with."""
    if _PRIVATE_MEMBERS.intersection(jwk):
        raise DpopError("the jwk header carries a private key")
    kty, curve = _KEY_FOR_ALG[alg]
    if jwk.get("kty") != kty or (curve is not None and jwk.get("crv") != curve):
        raise DpopError("the jwk does not fit the alg")
    if "alg" in jwk and jwk["alg"] != alg:
        raise DpopError("the jwk is bound to another alg")
    members: dict[str, str | list[str]] = {}
    for name in _REQUIRED_MEMBERS[kty]:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise DpopError("the jwk lacks a required member")
        members[name] = value
    if kty == "RSA" and not _MIN_RSA_BITS <= _rsa_bits(jwk["n"]) <= _MAX_RSA_BITS:
        raise DpopError("the RSA key size is not accepted")
    try:
        if kty == "EC":
            return ECKey.import_key(members)
        if kty == "OKP":
            return OKPKey.import_key(members)
        return RSAKey.import_key(members)
    except (JoseError, ValueError, TypeError):
        raise DpopError("the jwk is not a valid public key") from None


def _verify_signature(proof: str, key: ECKey | OKPKey | RSAKey, alg: str) -> None:
    """Step 6 and 8: the signature verifies with the proof's own key, under the header's alg."""
    try:
        with _eddsa_allowed(alg):
            jws.deserialize_compact(proof, key, registry=_REGISTRIES[alg])
    except (JoseError, ValueError, TypeError):
        raise DpopError("the proof signature does not verify") from None


def _check_claims(
    claims: dict[str, Any], *, method: str, url: str, now: int, max_age: int, max_future: int
) -> None:
    """Step 4 and 9-12 without state: jti, htm, htu, and iat within the window."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= _MAX_JTI:
        raise DpopError("jti must be a string of 1 to 256 characters")
    if not isinstance(claims.get("htm"), str) or claims["htm"] != method:
        raise DpopError("htm does not match the request method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalize_htu(htu) != normalize_htu(url):
        raise DpopError("htu does not match the request URL")
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise DpopError("iat must be an integer")
    if iat < now - max_age:
        raise DpopError("the proof is too old")
    if iat > now + max_future:
        raise DpopError("the proof is issued in the future")


def _import_private(key: Mapping[str, Any] | ECKey | OKPKey | RSAKey) -> ECKey | OKPKey | RSAKey:
    if isinstance(key, ECKey | OKPKey | RSAKey):
        return key
    data = dict(key)
    if "d" not in data:
        raise ValueError("a DPoP signing key is a private JWK")
    if data.get("kty") == "EC":
        return ECKey.import_key(data)
    if data.get("kty") == "OKP":
        return OKPKey.import_key(data)
    if data.get("kty") == "RSA":
        return RSAKey.import_key(data)
    raise ValueError("a DPoP signing key is an EC, OKP or RSA JWK")


def _rsa_bits(n: str) -> int:
    if len(n) > 2 * _MAX_RSA_BITS // 6:
        return _MAX_RSA_BITS + 1
    try:
        return int.from_bytes(b64url_decode(n), "big").bit_length()
    except ValueError:
        return 0


def _normalize_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, for paths that start with "/" (an absolute URL's path always does)."""
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output) if segments else ""


@contextlib.contextmanager
def _eddsa_allowed(alg: str) -> Iterator[None]:
    """RFC 9864 deprecates the name "EdDSA"; DPoP (RFC 9449) still registers it, so joserfc's
    warning is silenced for that one algorithm (and only then, as warning filters are global)."""
    if alg != "EdDSA":
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        yield
