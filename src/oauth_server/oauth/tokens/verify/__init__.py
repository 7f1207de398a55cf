"""Verification of the access tokens this server issues: JWTs checked locally (:mod:`.jwt`,
keys from the key ring or a remote JWKS, :mod:`.jwks`), opaque tokens looked up
(:mod:`.opaque`), the revocation list (:mod:`.revocation`), and one verifier for both formats
(:mod:`.any_format`). Used by introspection, revocation and the resource server."""
