"""Helpers shared by the HTTP tests."""

from __future__ import annotations

import base64
from urllib.parse import quote

import httpx

SEED_TOKEN_REQUEST = {
    "client_id": "admin",
    "client_secret": "getroot",
    "grant_type": "client_credentials",
    "scope": "restaurent",
}
DEMO_ID = "5f1a2b3c4d5e6f7a8b9c0d01"


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def seed_token(http: httpx.AsyncClient, scope: str = "restaurent") -> str:
    response = await http.post("/oauth/token", json={**SEED_TOKEN_REQUEST, "scope": scope})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
