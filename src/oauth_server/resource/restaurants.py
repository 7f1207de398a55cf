"""The restaurants domain: ids, validation, the two wire views and the operations.

The wire shape is the seed's MongoDB document::

    {"_id": {"$oid": "<24 hex>"}, "Name": "…", "Address": "…",
     "routine": {"open": "…", "close": "…"}}

and the public (no-token) view is ``{"Name": "…", "Address": "…"}``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from oauth_server.cache import TTLCache
from oauth_server.clock import Clock
from oauth_server.errors import InvalidRequest, NotFound
from oauth_server.storage.models import Change, Restaurant, RestaurantChanges
from oauth_server.storage.protocols import RestaurantRepository

__all__ = [
    "ADDRESS_MAX",
    "NAME_MAX",
    "READ_SCOPES",
    "TIME_MAX",
    "WRITE_SCOPES",
    "RestaurantPage",
    "RestaurantService",
    "full_view",
    "new_object_id",
    "parse_object_id",
    "public_view",
    "restaurant_from_document",
]

# The seed's single scope grants everything; the REST API's scopes split read from write.
READ_SCOPES = frozenset({"restaurent", "restaurants:read"})
WRITE_SCOPES = frozenset({"restaurent", "restaurants:write"})

NAME_MAX = 200
ADDRESS_MAX = 500
TIME_MAX = 32
SEED_LIST_LIMIT = 1000
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")


def new_object_id(now: float | None = None) -> str:
    """A MongoDB-style ObjectId: 4-byte big-endian seconds, then 8 random bytes."""
    seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
    return seconds.to_bytes(4, "big").hex() + os.urandom(8).hex()


def parse_object_id(value: str) -> str:
    """Validate a restaurant id; ``invalid_request`` (400) when it is not 24 hex digits."""
    if _OBJECT_ID.fullmatch(value) is None:
        raise InvalidRequest("id must be 24 hexadecimal digits")
    return value.lower()


def full_view(restaurant: Restaurant) -> dict[str, Any]:
    return {
        "_id": {"$oid": restaurant.restaurant_id},
        "Name": restaurant.name,
        "Address": restaurant.address,
        "routine": {"open": restaurant.open, "close": restaurant.close},
    }


def public_view(restaurant: Restaurant) -> dict[str, Any]:
    return {"Name": restaurant.name, "Address": restaurant.address}


def _check_text(
    field: str, value: str | None, limit: int, *, required: bool = False, blank: bool = True
) -> None:
    """``required``: must be present; ``blank``: may be empty or whitespace when present."""
    if value is None:
        if required:
            raise InvalidRequest(f"{field} is required")
        return
    if len(value) > limit:
        raise InvalidRequest(f"{field} must be at most {limit} characters")
    if not blank and not value.strip():
        raise InvalidRequest(f"{field} must not be empty")
    if any(ord(char) < 0x20 and char not in "\t" for char in value):
        raise InvalidRequest(f"{field} must not contain control characters")


def check_changes(changes: RestaurantChanges) -> None:
    _check_text("Name", changes.name, NAME_MAX, blank=False)
    _check_text("Address", changes.address, ADDRESS_MAX, blank=False)
    _check_text("open", changes.open, TIME_MAX)
    _check_text("close", changes.close, TIME_MAX)


def restaurant_from_document(document: Any, *, now: int) -> Restaurant:
    """Build a restaurant from a seed/MongoDB-extended-JSON document (for imports)."""
    if not isinstance(document, dict):
        raise InvalidRequest("each restaurant must be a JSON object")
    raw_id = document.get("_id")
    if isinstance(raw_id, dict):
        raw_id = raw_id.get("$oid")
    if raw_id is not None and not isinstance(raw_id, str):
        raise InvalidRequest('_id must be a string or {"$oid": string}')
    routine = document.get("routine")
    if routine is None:
        routine = {}
    if not isinstance(routine, dict):
        raise InvalidRequest("routine must be an object")
    fields = {
        "Name": document.get("Name"),
        "Address": document.get("Address"),
        "open": routine.get("open", ""),
        "close": routine.get("close", ""),
    }
    for field, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"{field} must be a string")
    _check_text("Name", fields["Name"], NAME_MAX, required=True, blank=False)
    _check_text("Address", fields["Address"], ADDRESS_MAX, required=True, blank=False)
    _check_text("open", fields["open"], TIME_MAX)
    _check_text("close", fields["close"], TIME_MAX)
    return Restaurant(
        restaurant_id=parse_object_id(raw_id) if raw_id is not None else new_object_id(now),
        name=str(fields["Name"]),
        address=str(fields["Address"]),
        open=str(fields["open"] or ""),
        close=str(fields["close"] or ""),
        created_at=now,
        updated_at=now,
    )


@dataclass(frozen=True, slots=True)
class RestaurantPage:
    items: list[Restaurant]
    next_cursor: str | None


class RestaurantService:
    """Restaurant operations, with reads served from a per-process cache.

    Every write announces itself on the change feed in its own transaction; this process drops
    its cache at once, every other within ``OAUTH_SERVER_CACHE_SYNC_INTERVAL`` (reads are
    read-your-writes here, and at most that stale elsewhere). ``version`` changes with every
    invalidation, so a caller may key derived data (rendered pages) on it.
    """

    def __init__(
        self, repository: RestaurantRepository, *, clock: Clock, cache_ttl: float = 30.0
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._pages: TTLCache[tuple[int, str | None], RestaurantPage] = TTLCache(max_entries=1024)
        self.version = 0

    def invalidate(self) -> None:
        self._pages.clear()
        self.version += 1

    def on_change(self, change: Change) -> None:
        self.invalidate()

    async def page(self, *, limit: int, cursor: str | None) -> RestaurantPage:
        after = parse_object_id(cursor) if cursor else None
        key = (limit, after)
        found, cached = self._pages.get(key)
        if found and cached is not None:
            return cached
        version = self.version
        rows = await self._repository.list(limit=limit + 1, after=after)
        more = len(rows) > limit
        items = rows[:limit]
        page = RestaurantPage(items=items, next_cursor=items[-1].restaurant_id if more else None)
        if version == self.version:  # no write landed while we read
            self._pages.set(key, page, self._cache_ttl)
        return page

    async def all_for_seed_route(self) -> list[Restaurant]:
        return (await self.page(limit=SEED_LIST_LIMIT, cursor=None)).items

    async def get(self, restaurant_id: str) -> Restaurant:
        restaurant = await self._repository.get(restaurant_id=parse_object_id(restaurant_id))
        if restaurant is None:
            raise NotFound("no restaurant with that id")
        return restaurant

    async def create(
        self, *, name: str, address: str, open: str = "", close: str = ""
    ) -> Restaurant:
        check_changes(RestaurantChanges(name=name, address=address, open=open, close=close))
        now = int(self._clock.now())
        restaurant = Restaurant(
            restaurant_id=new_object_id(now),
            name=name,
            address=address,
            open=open,
            close=close,
            created_at=now,
            updated_at=now,
        )
        await self._repository.add(restaurant=restaurant)
        self.invalidate()
        return restaurant

    async def update(self, restaurant_id: str, changes: RestaurantChanges) -> Restaurant:
        restaurant_id = parse_object_id(restaurant_id)
        check_changes(changes)
        if not changes.as_columns():
            raise InvalidRequest("nothing to update: give Name, Address, open or close")
        updated = await self._repository.update(
            restaurant_id=restaurant_id, changes=changes, now=int(self._clock.now())
        )
        self.invalidate()
        if updated is None:
            raise NotFound("no restaurant with that id")
        return updated

    async def delete(self, restaurant_id: str) -> None:
        deleted = await self._repository.delete(
            restaurant_id=parse_object_id(restaurant_id), now=int(self._clock.now())
        )
        self.invalidate()
        if not deleted:
            raise NotFound("no restaurant with that id")
