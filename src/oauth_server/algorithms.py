"""The JWS algorithms this server signs access tokens with and accepts: the one definition,
read by the settings, the key ring, the verifiers and the metadata.

Asymmetric only (RFC 8725 §3.1/§3.2: an allowlist, never ``none``, never an HMAC that a public
key could be abused as). Ed25519 is the fully specified name (RFC 9864); EdDSA, which it
deprecates, is kept because many verifiers (PyJWT among them) know only that name. Both use
Ed25519 keys.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["SIGNING_ALGS", "SigningAlg"]

SigningAlg = Literal["ES256", "RS256", "Ed25519", "EdDSA"]
SIGNING_ALGS: tuple[SigningAlg, ...] = get_args(SigningAlg)
