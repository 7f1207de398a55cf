from __future__ import annotations

import pytest

from oauth_server.errors import InvalidRequest
from oauth_server.resource.restaurants import (
    full_view,
    new_object_id,
    parse_object_id,
    public_view,
    restaurant_from_document,
)


def test_object_ids_are_24_hex_and_time_prefixed() -> None:
    oid = new_object_id(0x5F000000)
    assert len(oid) == 24
    assert oid.startswith("5f000000")
    assert new_object_id() != new_object_id()


@pytest.mark.parametrize("value", ["", "abc", "g" * 24, "a" * 25, " " + "a" * 23])
def test_malformed_ids(value: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_object_id(value)


def test_ids_are_normalised_to_lower_case() -> None:
    assert parse_object_id("ABCDEF" + "0" * 18) == "abcdef" + "0" * 18


def test_document_round_trip() -> None:
    document = {
        "_id": {"$oid": "5f1a2b3c4d5e6f7a8b9c0d01"},
        "Name": "N",
        "Address": "A",
        "routine": {"open": "1", "close": "2"},
    }
    restaurant = restaurant_from_document(document, now=1)
    assert full_view(restaurant) == document
    assert public_view(restaurant) == {"Name": "N", "Address": "A"}


@pytest.mark.parametrize(
    "document",
    [
        {"Name": "N"},
        {"Name": "", "Address": "A"},
        {"Name": "N", "Address": "A", "routine": []},
        {"Name": "N", "Address": "A", "routine": {"open": 9}},
        {"_id": 5, "Name": "N", "Address": "A"},
        {"Name": "N" * 201, "Address": "A"},
    ],
)
def test_bad_documents(document: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        restaurant_from_document(document, now=1)
