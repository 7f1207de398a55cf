"""Which proxies are believed and what a forwarded-for hop may look like, at every edge
(kills the mutants of ``addresses.py``; see ``make mutate``). The cases that show the
behaviour as a whole are in ``test_addresses.py``."""

from __future__ import annotations

import pytest

from oauth_server.addresses import TrustedProxies, parse_ip


@pytest.mark.parametrize(
    "hop",
    [
        "[2001:db8::1]x4711",  # after "]" only ":" and a port
        "[2001:db8::1]:x1",
        "[2001:db8::1]:",
        "[fe80::1%]]",  # the first "]" ends the address: a second one is garbage
        "[fe80::1%a]]:1",
        "[]",
        "[]:1",
    ],
)
def test_bracketed_hops_that_are_not_an_address_and_port(hop: str) -> None:
    assert parse_ip(hop) is None


def test_a_bracketed_address_with_a_scope_and_a_port() -> None:
    assert str(parse_ip("[fe80::1%eth0]:4711")) == "fe80::1%eth0"


def test_the_proxy_list_is_split_at_commas_only() -> None:
    proxies = TrustedProxies("10.0.0.1,10.0.0.2")
    assert proxies.trusts("10.0.0.1")
    assert proxies.trusts("10.0.0.2")
    assert not proxies.trusts("10.0.0.3")


def test_empty_items_of_the_proxy_list_are_skipped() -> None:
    proxies = TrustedProxies(" , 10.0.0.1,, 192.168.0.0/16 ,")
    assert proxies.trusts("10.0.0.1")
    assert proxies.trusts("192.168.4.4")


def test_a_network_may_be_written_with_host_bits() -> None:
    # `10.1.2.3/8` is read as 10.0.0.0/8 (ip_network(strict=False)), as operators write it.
    proxies = TrustedProxies("10.1.2.3/8, 2001:db8::1/64")
    assert proxies.trusts("10.200.0.1")
    assert proxies.trusts("2001:db8::ffff")
    assert not proxies.trusts("11.0.0.1")


def test_an_unreadable_entry_is_named_with_examples() -> None:
    with pytest.raises(ValueError, match="not an IP address") as caught:
        TrustedProxies("10.0.0.1, proxy.example")
    assert str(caught.value) == (
        "'proxy.example' is not an IP address or network (such as 10.0.0.1 or "
        "10.0.0.0/8; to trust every peer, 0.0.0.0/0,::/0)"
    )


def test_forwarded_for_hops_are_split_at_commas_only() -> None:
    proxies = TrustedProxies("127.0.0.1, 10.0.0.0/8")
    assert proxies.client_address("127.0.0.1", "198.51.100.1,10.1.1.1") == "198.51.100.1"
    assert proxies.client_address("127.0.0.1", "203.0.113.1,198.51.100.1") == "198.51.100.1"


def test_the_resolution_cache_is_bounded_and_skips_long_headers() -> None:
    # A header of attacker-chosen bytes must not pin memory: 4096 entries, none longer than
    # 256 characters.
    proxies = TrustedProxies("127.0.0.1")
    info = proxies._cached.cache_info
    assert info().maxsize == 4096
    at_limit = " " * (256 - len("198.51.100.1")) + "198.51.100.1"
    assert proxies.client_address("127.0.0.1", at_limit) == "198.51.100.1"
    assert info().currsize == 1
    over = " " + at_limit
    assert proxies.client_address("127.0.0.1", over) == "198.51.100.1"
    assert info().currsize == 1
