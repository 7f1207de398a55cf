"""Password logins as a browser makes them, in a loop, from N concurrent "browsers": the load
that runs beside a token measurement in the logins scenario (issue 11: 20 parallel argon2id
logins must not stall token issuance).

Each login is a new browser (no cookies): the authorization request, the login page (for its
CSRF token and the interaction cookie), the form post with the password, which the server
verifies with argon2id at its configured cost; a login counts when the server answers it with
the redirect back to the client (the client skips consent). Prints one JSON line at the end:
{"logins": …, "failures": …, "seconds": …}.

    python -m harness.logins --port 8889 --client-id C --username U --seconds 10 < password
"""

import argparse
import asyncio
import json
import re
import sys
import time
import urllib.parse

import httpx

from .signin import CHALLENGE, PYTHON_SCOPE, REDIRECT_URI

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ACTION = re.compile(r'<form[^>]* action="([^"]+)"')


async def login_once(base: str, client_id: str, username: str, password: str) -> bool:
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": PYTHON_SCOPE,
            "state": "bench",
            "code_challenge": CHALLENGE.decode(),
            "code_challenge_method": "S256",
        }
    )
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        start = await browser.get(f"/oauth/authorize?{query}")
        if start.status_code != 303:
            return False
        page = await browser.get(start.headers["location"])
        csrf, action = _CSRF.search(page.text), _ACTION.search(page.text)
        if page.status_code != 200 or csrf is None:
            return False
        target = urllib.parse.urljoin(str(page.url), action.group(1) if action else "")
        done = await browser.post(
            target,
            data={"csrf_token": csrf.group(1), "username": username, "password": password},
        )
        return done.status_code == 303 and done.headers["location"].startswith(REDIRECT_URI)


async def run(args: argparse.Namespace, password: str) -> dict[str, float]:
    base = f"http://127.0.0.1:{args.port}"
    deadline = time.monotonic() + args.seconds
    counts = {"logins": 0, "failures": 0}

    async def browser_loop() -> None:
        while time.monotonic() < deadline:
            try:
                ok = await login_once(base, args.client_id, args.username, password)
            except httpx.HTTPError:
                ok = False
            counts["logins" if ok else "failures"] += 1

    started = time.monotonic()
    await asyncio.gather(*(browser_loop() for _ in range(args.concurrency)))
    return {**counts, "seconds": round(time.monotonic() - started, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    password = sys.stdin.readline().rstrip("\n")
    print(json.dumps(asyncio.run(run(args, password))), flush=True)


if __name__ == "__main__":
    main()
