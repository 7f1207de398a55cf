"""A session that handles every kind of secret the server sees, and the check that none of
them reached a place they must never be (audit trail, logs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpx

from oauth_server.crypto import new_secret
from tests.helpers import basic, bearer, opaque_parts

Rotate = Callable[[str], Awaitable[str]]


@dataclass
class Session:
    """What was used in the session: the values that must not leak, and the identifiers that
    should appear (proof that the haystack searched is the right one)."""

    secrets: list[str] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)

    def token(self, value: str) -> None:
        self.secrets.append(value)
        if value.count(".") == 2:  # a JWT: its signature alone is as good as the token
            self.secrets.append(value.rsplit(".", 1)[1])
            return
        prefix, raw = opaque_parts(value)
        # An opaque split token: the verifier (encoded as in the token, and in hex) is the
        # secret part; the selector names the token and is what the audit trail records.
        self.secrets += [value[len(prefix) + 16 :], raw[12:44].hex()]
        self.identifiers.append(raw[:12].hex())


async def _token(http: httpx.AsyncClient, **request: object) -> str:
    response = await http.post("/oauth/token", **request)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def run_session(
    http: httpx.AsyncClient,
    *,
    jwt_client: tuple[str, str],
    opaque_client: tuple[str, str],
    rotate: Rotate,
    sync_wait: Callable[[], Awaitable[None]],
) -> Session:
    """Tokens by every client authentication method, failed authentications (wrong secret,
    unknown client, a secret as bearer token), introspection, resource calls, revocation (own
    and someone else's token), a secret rotation and the old secret refused afterwards."""
    (jwt_id, jwt_secret), (opaque_id, opaque_secret) = jwt_client, opaque_client
    session = Session(secrets=[jwt_secret, opaque_secret])
    grant = {"grant_type": "client_credentials"}

    by_basic = await _token(http, data=grant, headers={"Authorization": basic(jwt_id, jwt_secret)})
    by_json = await _token(http, json={**grant, "client_id": jwt_id, "client_secret": jwt_secret})
    opaque = await _token(
        http, data={**grant, "client_id": opaque_id, "client_secret": opaque_secret}
    )
    for token in (by_basic, by_json, opaque):
        session.token(token)

    wrong, unknown = new_secret(), new_secret()
    session.secrets += [wrong, unknown]
    failures = [
        {"data": grant, "headers": {"Authorization": basic(jwt_id, wrong)}},
        {"data": {**grant, "client_id": opaque_id, "client_secret": wrong}},
        {"json": {**grant, "client_id": "nobody", "client_secret": unknown}},
    ]
    for failure in failures:
        assert (await http.post("/oauth/token", **failure)).status_code == 401  # type: ignore[arg-type]
    assert (await http.get("/restaurent", headers=bearer(wrong))).status_code == 401

    jwt_auth = {"Authorization": basic(jwt_id, jwt_secret)}
    opaque_auth = {"Authorization": basic(opaque_id, opaque_secret)}
    for token in (by_basic, opaque):
        assert (await http.get("/restaurent", headers=bearer(token))).status_code == 200
        assert (await http.get("/api/restaurants", headers=bearer(token))).status_code == 200
        response = await http.post("/oauth/introspect", data={"token": token}, headers=jwt_auth)
        assert response.status_code == 200
    # Someone else's token: refused quietly (and logged with client ids only).
    assert (
        await http.post("/oauth/revoke", data={"token": opaque}, headers=jwt_auth)
    ).status_code == 200
    for token, auth in ((by_basic, jwt_auth), (opaque, opaque_auth)):
        assert (
            await http.post("/oauth/revoke", data={"token": token}, headers=auth)
        ).status_code == 200
        assert (await http.get("/restaurent", headers=bearer(token))).status_code == 401

    rotated = await rotate(jwt_id)
    session.secrets.append(rotated)
    await sync_wait()
    old = {"data": grant, "headers": {"Authorization": basic(jwt_id, jwt_secret)}}
    assert (await http.post("/oauth/token", **old)).status_code == 401  # type: ignore[arg-type]
    session.token(await _token(http, data=grant, headers={"Authorization": basic(jwt_id, rotated)}))
    return session


def leaked(haystack: str, secrets: Iterable[str]) -> list[str]:
    """The secrets found in ``haystack`` (shortened, so a failure does not print them whole)."""
    return [f"{secret[:6]}… ({len(secret)} chars)" for secret in secrets if secret in haystack]
