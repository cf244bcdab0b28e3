"""Checks an AWS Signature Version 4 the way AWS does, written from the specification and
independent of botocore: a test can then tell a valid signature from one that only looks so.

Only what DynamoDB's JSON protocol uses: ``POST /``, no query string, a signed payload.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), ?"
    r"SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Signed:
    access_key: str
    region: str
    service: str
    signed_headers: tuple[str, ...]


def verify(headers: dict[str, str], body: bytes, *, secret_key: str) -> Signed:
    """The signature's claims, if ``headers`` (names lower-cased) carry a valid signature of
    ``POST /`` with ``body`` by ``secret_key``; else AssertionError saying what is wrong."""
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    assert match, f"no SigV4 Authorization header: {headers.get('authorization')!r}"
    scope = match["scope"]
    day, region, service, terminal = scope.split("/")
    assert terminal == "aws4_request", scope
    signed = tuple(match["signed"].split(";"))
    assert {"host", "x-amz-date"} <= set(signed), f"host and date unsigned: {signed}"
    missing = [name for name in signed if name not in headers]
    assert not missing, f"signed headers not sent: {missing}"
    amz_date = headers["x-amz-date"]
    assert amz_date.startswith(day), f"date {amz_date} outside the scope {scope}"

    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, match["signature"]), "the signature does not match"
    return Signed(match["key"], region, service, signed)
