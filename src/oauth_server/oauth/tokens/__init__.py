"""Access tokens: issuance (:mod:`.issue`) and verification (:mod:`.verify`), in the core, used
by the token, introspection and revocation endpoints and by the resource server."""
