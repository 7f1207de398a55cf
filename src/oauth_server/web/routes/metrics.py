"""``GET /metrics``: the Prometheus exposition, for the addresses and the bearer secret the
configuration allows.

Two checks, both applied: the client address (after ``OAUTH_SERVER_TRUSTED_PROXIES``) must be
in ``OAUTH_SERVER_METRICS_ALLOWED_ADDRESSES`` (default: loopback) — else 403 — and, when a
secret is configured (its SHA-256, or a file holding it), the request must carry it as
``Authorization: Bearer`` — else 401 with a ``Bearer`` challenge (RFC 6750 §3). A refused
request gets the error and no metric. The presented secret is hashed and the digests compared
in constant time; the secret itself is kept nowhere, logged nowhere.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from oauth_server.addresses import TrustedProxies
from oauth_server.config import Settings
from oauth_server.errors import BearerChallenge, Forbidden, InvalidToken
from oauth_server.metrics import CONTENT_TYPE, PrometheusMetrics
from oauth_server.oauth.http import Headers, OAuthRequest, OAuthResponse
from oauth_server.web.api import Api, Call

__all__ = ["MetricsAccess", "register"]

_REALM = "metrics"
_HEADERS = Headers.of({"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    addresses: TrustedProxies
    token_sha256: bytes | None

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsAccess:
        digest: bytes | None = None
        if settings.metrics_token_sha256 is not None:
            digest = bytes.fromhex(settings.metrics_token_sha256)
        elif settings.metrics_token_file is not None:
            secret = settings.metrics_token_file.read_text(encoding="utf-8").strip()
            if not secret:
                raise ValueError("OAUTH_SERVER_METRICS_TOKEN_FILE is empty")
            digest = hashlib.sha256(secret.encode("utf-8")).digest()
        return cls(TrustedProxies(settings.metrics_allowed_addresses), digest)

    def check(self, request: OAuthRequest) -> None:
        """Raise unless ``request`` may read the metrics."""
        if not self.addresses.trusts(request.client_ip):
            raise Forbidden("metrics are not available to this address")
        if self.token_sha256 is None:
            return
        header = request.headers.get("authorization")
        if header is None:
            raise BearerChallenge("a bearer secret is required", realm=_REALM)
        scheme, _, presented = header.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise InvalidToken("a bearer secret is required", realm=_REALM)
        digest = hashlib.sha256(presented.encode("latin-1")).digest()
        if not hmac.compare_digest(digest, self.token_sha256):
            raise InvalidToken("wrong bearer secret", realm=_REALM)


def register(api: Api, *, metrics: PrometheusMetrics, access: MetricsAccess) -> None:
    @api.route("/metrics", methods=["GET"])
    async def metrics_page(call: Call) -> OAuthResponse:
        """Prometheus text exposition (README "Metrics")."""
        access.check(call.request)
        return OAuthResponse(200, metrics.render(), _HEADERS)
