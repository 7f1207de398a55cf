"""Client addresses (issue 8 finding 8): IPv6 counted by /64, X-Forwarded-For believed only from
trusted proxies and only when its hops are IP addresses."""

from __future__ import annotations

import time
from typing import Any

import pytest

from oauth_server.addresses import TrustedProxies, address_key, parse_ip
from oauth_server.errors import TooManyRequests
from oauth_server.oauth.ratelimit import RateLimiter, RateLimitPolicy


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("", ""),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),  # IPv4-mapped: the IPv4 address
        ("fe80::1%eth0", "fe80::/64"),
        ("not:an:address", "not:an:address"),  # left alone (a unix socket, say)
    ],
)
def test_address_key(address: str, key: str) -> None:
    assert address_key(address) == key


@pytest.mark.parametrize(
    ("hop", "parsed"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:4711", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("unknown", None),  # RFC 7239 §6.3's placeholder
        ("_hidden", None),  # RFC 7239 §6.3's obfuscated identifier
        ("proxy.example", None),
        ("192.0.2.1:port", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]x", None),
        ("[192.0.2.1]", None),
        ("192.0.2.256", None),
        ("010.0.0.1", None),  # leading zeros: octal to some parsers
        ("", None),
        ("192.0.2.1\x00", None),
    ],
)
def test_parse_ip(hop: str, parsed: str | None) -> None:
    ip = parse_ip(hop)
    assert (str(ip) if ip is not None else None) == parsed


PROXIES = TrustedProxies("127.0.0.1, 10.0.0.0/8, 2001:db8:ffff::/48")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # No header, or an untrusted peer: the peer.
        ("127.0.0.1", None, "127.0.0.1"),
        ("192.0.2.9", "198.51.100.1", "192.0.2.9"),
        ("192.0.2.9", "garbage", "192.0.2.9"),
        # A trusted peer: the rightmost hop that is not a trusted proxy.
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", " 198.51.100.1 ", "198.51.100.1"),
        ("127.0.0.1", "198.51.100.1, 10.1.1.1", "198.51.100.1"),
        ("10.2.2.2", "203.0.113.5, 198.51.100.1, 10.1.1.1", "198.51.100.1"),  # left is forgeable
        ("127.0.0.1", "evil, 198.51.100.1", "198.51.100.1"),  # what the client wrote: unread
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
        ("127.0.0.1", "[2001:db8::1]:4711", "2001:db8::1"),
        ("127.0.0.1", "198.51.100.1:4711", "198.51.100.1"),
        ("2001:db8:ffff::1", "198.51.100.1", "198.51.100.1"),
        # Every hop trusted: the leftmost.
        ("127.0.0.1", "10.3.3.3, 10.1.1.1", "10.3.3.3"),
        # A hop that is not an IP address: the header is not believed.
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", "unknown", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1, garbage", "127.0.0.1"),
        ("127.0.0.1", "garbage, 10.1.1.1", "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1,", "127.0.0.1"),
        ("127.0.0.1", "x" * 1000, "127.0.0.1"),  # long: resolved without the cache
        ("127.0.0.1", "10.1.1.1, " * 100 + "198.51.100.1", "198.51.100.1"),
    ],
)
def test_client_address(peer: str, forwarded_for: str | None, client: str) -> None:
    assert PROXIES.client_address(peer, forwarded_for) == client
    assert PROXIES.client_address(peer, forwarded_for) == client  # cached: the same answer


def test_no_trusted_proxies() -> None:
    nobody = TrustedProxies("")
    assert not nobody
    assert not nobody.trusts("127.0.0.1")
    assert nobody.client_address("127.0.0.1", "198.51.100.1") == "127.0.0.1"
    assert PROXIES
    assert PROXIES.trusts("10.9.9.9")
    assert not PROXIES.trusts("11.0.0.1")


@pytest.mark.parametrize("spec", ["*", "proxy.example", "10.0.0.1, nope", "10.0.0.0/33"])
def test_unreadable_proxy_lists_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        TrustedProxies(spec)


async def test_ipv6_failures_are_counted_by_their_64() -> None:
    limiter = RateLimiter(RateLimitPolicy(auth_failures_per_address="3/minute"))
    for index in range(3):
        await limiter.authentication_failed("", f"2001:db8:0:1::{index + 1}")
    with pytest.raises(TooManyRequests):
        await limiter.before_authentication("", "2001:db8:0:1:ffff:ffff:ffff:ffff")
    await limiter.before_authentication("", "2001:db8:0:2::1")  # the next /64: its own budget
    await limiter.before_authentication("", "192.0.2.1")


async def test_ipv6_bearer_failures_are_counted_by_their_64() -> None:
    limiter = RateLimiter(RateLimitPolicy(bearer_failures_per_address="2/minute"))
    await limiter.bearer_failed("2001:db8::1")
    await limiter.bearer_failed("2001:db8::2")
    with pytest.raises(TooManyRequests):
        await limiter.bearer_failed("2001:db8::3")
    with pytest.raises(TooManyRequests):
        limiter.before_bearer("2001:db8::abcd")
    limiter.before_bearer("2001:db8:0:1::1")


class _Later:
    """The ``time`` module as the limiter sees it, two minutes on."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def time(self) -> float:
        return float(self._real.time()) + 120

    def monotonic(self) -> float:
        return float(self._real.monotonic()) + 120


async def test_ended_lockouts_and_old_failures_are_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # So that valid tokens and correct secrets cost the limiter nothing again afterwards.
    limiter = RateLimiter(
        RateLimitPolicy(
            bearer_failures_per_address="1/minute", auth_failures_per_address="1/minute"
        )
    )
    await limiter.bearer_failed("192.0.2.1")
    with pytest.raises(TooManyRequests):
        await limiter.bearer_failed("192.0.2.1")
    await limiter.authentication_failed("", "192.0.2.1")
    assert limiter.bearer_lockouts
    monkeypatch.setattr("oauth_server.oauth.ratelimit.time", _Later(time))
    limiter.before_bearer("192.0.2.2")
    await limiter.before_authentication("", "192.0.2.2")
    assert limiter.bearer_lockouts == {}
    assert not limiter._failing
