"""The signature: HMAC-SHA256 of `<timestamp>.<body>` with the shared secret, checked by the
receiver over the exact bytes, within a tolerance of its clock."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from autoscaler.webhooks.signature import SIGNATURE, TIMESTAMP, sign, verify

SECRET = "it is a secret"
BODY = b'{"Action":"scale_up","id":"host-1-ab:7"}'
# printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac 'it is a secret'
VECTOR = "0da32e61ec6680a067dca7f1588e336f898a3be3bf1ab376aea0714e1fdfa98b"


def test_the_signature_is_the_hmac_sha256_of_the_timestamp_a_dot_and_the_body() -> None:
    assert sign(SECRET, BODY, now=1_700_000_000.9) == {
        TIMESTAMP: "1700000000",
        SIGNATURE: f"sha256={VECTOR}",
    }


def test_a_receiver_accepts_the_known_vector_whatever_the_case_of_the_header_names() -> None:
    headers = {"x-autoscaler-timestamp": "1700000000", "X-AUTOSCALER-SIGNATURE": f"sha256={VECTOR}"}
    assert verify(SECRET, BODY, headers, now=1_700_000_100)


def test_a_changed_body_another_secret_an_old_timestamp_or_no_header_is_refused() -> None:
    headers = sign(SECRET, BODY, now=1_700_000_000)
    assert not verify(SECRET, BODY + b" ", headers, now=1_700_000_000)
    assert not verify("another", BODY, headers, now=1_700_000_000)
    assert not verify(SECRET, BODY, headers, now=1_700_000_000 + 301)
    assert not verify(SECRET, BODY, {SIGNATURE: headers[SIGNATURE]}, now=1_700_000_000)
    assert not verify(SECRET, BODY, {**headers, TIMESTAMP: "soon"}, now=1_700_000_000)
    # The timestamp is signed: moving it forward to pass the tolerance breaks the signature.
    assert not verify(SECRET, BODY, {**headers, TIMESTAMP: "1700000400"}, now=1_700_000_400)


@given(secret=st.text(min_size=1), body=st.binary(), now=st.integers(0, 2**40))
def test_any_signed_body_verifies_as_python_s_own_hmac_computes_it(
    secret: str, body: bytes, now: int
) -> None:
    headers = sign(secret, body, now=now)
    expected = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE] == f"sha256={expected}"
    assert verify(secret, body, headers, now=now)
