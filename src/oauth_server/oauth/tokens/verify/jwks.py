"""Keys from a remote issuer's JWKS, for a resource server that runs apart from it.

The key set is fetched once at start, again whenever a token names a ``kid`` not in it (at most
once per ``min_refresh_interval``, so made-up kids cannot turn into a request flood), and in the
background every ``max_age`` seconds. Only public asymmetric keys that state their ``alg`` are
taken: the algorithm stays pinned per key.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx
from joserfc import jwk
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from oauth_server.algorithms import SIGNING_ALGS
from oauth_server.background import Periodic
from oauth_server.clock import Clock

__all__ = ["RemoteJwks"]

log = logging.getLogger(__name__)
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


@dataclass(frozen=True, slots=True)
class _Key:
    alg: str
    key: ECKey | RSAKey | OKPKey


class RemoteJwks:
    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
        min_refresh_interval: float = 10.0,
        max_age: float = 300.0,
    ) -> None:
        self._url = url
        self._clock = clock
        self._http = http or httpx.AsyncClient(timeout=5.0)
        self._min_refresh_interval = min_refresh_interval
        self._keys: dict[str, _Key] = {}
        self._last_fetch = float("-inf")
        self._lock = asyncio.Lock()
        self._refresher = Periodic(
            "jwks-refresh", self.refresh, interval=lambda: max_age, on_error=self._refresh_failed
        )

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    def verification_key(self, kid: str, now: float) -> _Key | None:
        return self._keys.get(kid)

    async def reload_for_unknown_kid(self) -> bool:
        async with self._lock:
            if self._clock.now() - self._last_fetch < self._min_refresh_interval:
                return False
            await self.refresh()
            return True

    async def refresh(self) -> None:
        self._last_fetch = self._clock.now()
        response = await self._http.get(self._url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError(f"{self._url} is not a JWK Set")
        keys: dict[str, _Key] = {}
        for entry in entries:
            parsed = self._parse(entry)
            if parsed is not None:
                keys[entry["kid"]] = parsed
        self._keys = keys

    @staticmethod
    def _parse(entry: object) -> _Key | None:
        if not isinstance(entry, dict):
            return None
        kid, alg = entry.get("kid"), entry.get("alg")
        if not isinstance(kid, str) or alg not in SIGNING_ALGS:
            return None
        if entry.get("use", "sig") != "sig" or any(m in entry for m in _PRIVATE_MEMBERS):
            return None
        try:
            key = jwk.import_key(entry)
        except (JoseError, ValueError, TypeError):
            return None
        expected = {"ES256": ECKey, "RS256": RSAKey, "Ed25519": OKPKey, "EdDSA": OKPKey}[alg]
        if not isinstance(key, expected):
            return None
        return _Key(alg=alg, key=key)

    async def start(self) -> None:
        await self.refresh()
        self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()
        await self._http.aclose()

    def _refresh_failed(self, exc: Exception) -> None:
        log.warning("refreshing %s failed; keeping the keys we have: %s", self._url, exc)
