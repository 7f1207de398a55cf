"""The second process of the cross-process races in ``test_sign_in_contract.py``.

``python -m tests.storage.race_child URL KIND SELECTOR_HEX VERIFIER_HASH_HEX N``: opens its own
engine and event loop on the database at URL, prints ``ready`` once its pool is warm, waits for
a line on stdin, then makes N concurrent attempts to consume the code (KIND ``code``) or rotate
the refresh token (KIND ``refresh``) and prints how many it won.
"""

from __future__ import annotations

import asyncio
import sys

from oauth_server.crypto import new_split_token
from oauth_server.storage import RefreshTokenRecord, open_storage


async def main(url: str, kind: str, selector: bytes, verifier_hash: bytes, n: int) -> None:
    storage = open_storage(url, pool_size=n)
    try:
        await asyncio.gather(*(storage.ping() for _ in range(n)))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def attempt() -> bool:
            if kind == "code":
                got = await storage.codes.consume(
                    selector=selector, verifier_hash=verifier_hash, now=1000
                )
                return got is not None and got.outcome == "consumed"
            split = new_split_token(1000)
            successor = RefreshTokenRecord(
                selector=split.selector,
                verifier_hash=split.verifier_hash,
                family_id="",
                client_id="",
                user_id="",
                scope="openid",
                issued_at=1000,
                expires_at=5000,
            )
            rotation = await storage.refresh_tokens.rotate(
                selector=selector, verifier_hash=verifier_hash, successor=successor, now=1000
            )
            return rotation is not None and rotation.outcome == "rotated"

        wins = await asyncio.gather(*(attempt() for _ in range(n)))
        print(sum(wins), flush=True)
    finally:
        await storage.close()


if __name__ == "__main__":
    url, kind, selector, verifier_hash, n = sys.argv[1:6]
    asyncio.run(main(url, kind, bytes.fromhex(selector), bytes.fromhex(verifier_hash), int(n)))
