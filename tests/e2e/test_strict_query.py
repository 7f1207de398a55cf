"""Query strings are decoded strictly: bytes that are not UTF-8 are refused, never replaced."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import DEMO_ID, FORM, bearer, seed_token


@pytest.mark.parametrize(
    "raw",
    [
        "%ED%A0%80",  # an encoded UTF-16 surrogate: no Unicode character
        "%FF",  # never valid in UTF-8
        "%C3",  # a truncated sequence
    ],
)
async def test_invalid_utf8_in_a_query_value_is_invalid_request(
    client: httpx.AsyncClient, raw: str
) -> None:
    token = await seed_token(client)
    before = (await client.get(f"/api/restaurants/{DEMO_ID}", headers=bearer(token))).json()
    response = await client.get(
        f"/restaurentUpdate?id={DEMO_ID}&Address={raw}", headers=bearer(token)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    after = (await client.get(f"/api/restaurants/{DEMO_ID}", headers=bearer(token))).json()
    assert after["Address"] == before["Address"]
    assert "\ufffd" not in after["Address"]


async def test_invalid_utf8_in_a_form_value_is_invalid_request(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&scope=%ED%A0%80",
        headers={**FORM, "Authorization": "Basic YWRtaW46Z2V0cm9vdA=="},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_valid_utf8_in_a_query_value_is_stored(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.get(
        f"/restaurentUpdate?id={DEMO_ID}&Address=Caf%C3%A9+du+Port", headers=bearer(token)
    )
    assert response.status_code == 200
    after = (await client.get(f"/api/restaurants/{DEMO_ID}", headers=bearer(token))).json()
    assert after["Address"] == "Café du Port"
