"""The composition root of the core: settings and storage in, wired services out.

``create_app`` (web) and the CLI both build on :func:`build_services`; nothing else constructs
core objects, so there is one place to read how the server is put together.
"""

from __future__ import annotations

from dataclasses import dataclass

from oauth_server.clock import Clock, SystemClock
from oauth_server.config import Settings
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import CLIENT_CHANGE, ClientDirectory, ClientRegistry
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import default_grants
from oauth_server.oauth.tokens import OpaqueTokenIssuer, TokenService
from oauth_server.resource.bearer import ResourceGuard
from oauth_server.resource.opaque import OpaqueTokenVerifier
from oauth_server.resource.restaurants import RestaurantService
from oauth_server.storage import Storage, open_storage
from oauth_server.sync import ChangeSync

__all__ = ["Services", "build_services"]

RESOURCE_REALM = "restaurants"


@dataclass
class Services:
    settings: Settings
    storage: Storage
    clock: Clock
    clients: ClientDirectory
    registry: ClientRegistry
    token_endpoint: TokenEndpoint
    restaurants: RestaurantService
    guard: ResourceGuard
    sync: ChangeSync

    async def start(self) -> None:
        await self.sync.start()

    async def close(self) -> None:
        await self.sync.stop()
        await self.storage.close()


def build_services(
    settings: Settings, *, storage: Storage | None = None, clock: Clock | None = None
) -> Services:
    clock = clock or SystemClock()
    storage = storage or open_storage(settings.database_url, pool_size=settings.database_pool_size)
    directory = ClientDirectory(storage.clients)
    sync = ChangeSync(storage.changes, clock=clock, interval=settings.cache_sync_interval)
    sync.subscribe(CLIENT_CHANGE, directory.on_change)
    opaque = OpaqueTokenIssuer(storage.tokens, clock=clock, ttl=settings.access_token_ttl)
    token_endpoint = TokenEndpoint(
        authenticator=ClientAuthenticator(directory),
        grants=default_grants(),
        tokens=TokenService({"opaque": opaque}),
    )
    guard = ResourceGuard(OpaqueTokenVerifier(storage.tokens, clock=clock), realm=RESOURCE_REALM)
    return Services(
        settings=settings,
        storage=storage,
        clock=clock,
        clients=directory,
        registry=ClientRegistry(storage, clock=clock, directory=directory),
        token_endpoint=token_endpoint,
        restaurants=RestaurantService(storage.restaurants, clock=clock),
        guard=guard,
        sync=sync,
    )
