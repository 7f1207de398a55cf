"""Client addresses: who sent a request, behind trusted proxies, and what a per-address limit
counts.

* :class:`TrustedProxies` believes ``X-Forwarded-For`` only from the peers named in
  ``OAUTH_SERVER_TRUSTED_PROXIES`` (RFC 9700 §4.13: a proxy's headers are trusted only from the
  proxy), and only when the hop it names is an IP address: anything else (``unknown``, an
  obfuscated identifier, a host name, garbage) is not believed and the peer address is kept.
* :func:`address_key` is the unit a per-address budget counts: an IPv4 address, or the /64 an
  IPv6 address belongs to — RFC 4291 §2.5.1 gives unicast addresses 64-bit interface
  identifiers, so one host (one SLAAC router advertisement) can pick any of 2^64 addresses and
  counting single IPv6 addresses would limit nothing.
"""

from __future__ import annotations

import functools
import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = ["TrustedProxies", "address_key", "parse_ip"]

_IPAddress = IPv4Address | IPv6Address

# Longer X-Forwarded-For values are resolved without the cache (they would pin memory).
_CACHED_HEADER_LENGTH = 256


def parse_ip(value: str) -> _IPAddress | None:
    """The address of one ``X-Forwarded-For`` hop, ``None`` when it is not an IP address.

    Accepts ``192.0.2.1``, ``2001:db8::1``, and the forms with a port some proxies write
    (``192.0.2.1:4711``, ``[2001:db8::1]:4711``, ``[2001:db8::1]``).
    """
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1 :] if end > 0 else "x"
        if rest and not (rest[0] == ":" and rest[1:].isdigit()):
            return None
        value = value[1:end]
        try:
            return IPv6Address(value)
        except ValueError:
            return None
    if value.count(":") == 1:
        value, _, port = value.partition(":")
        if not port.isdigit():
            return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    """The reverse proxies whose ``X-Forwarded-For`` is believed."""

    def __init__(self, spec: str) -> None:
        """``spec``: comma-separated addresses or networks (``10.0.0.1, 192.168.0.0/16``).

        Raises ``ValueError`` naming the first entry that is neither.
        """
        networks: list[IPv4Network | IPv6Network] = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (such as 10.0.0.1 or "
                    "10.0.0.0/8; to trust every peer, 0.0.0.0/0,::/0)"
                ) from None
        self._networks = tuple(networks)
        self._cached = functools.lru_cache(maxsize=4096)(self._resolve)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        """Whether the peer ``address`` is one of the trusted proxies."""
        ip = parse_ip(address)
        return ip is not None and self._contains(ip)

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The address of the client: ``peer`` unless it is a trusted proxy that says whom it
        forwards for.

        Each proxy appends the address it received the request from, so the hops are read from
        the right: past the trusted proxies, the first address is the client's (a client may
        write anything to the left of it). A hop that is not an IP address makes the header
        unbelievable: the peer's address is kept. When every hop is a trusted proxy, the
        leftmost is the client.
        """
        if forwarded_for is None:
            return peer
        if len(forwarded_for) > _CACHED_HEADER_LENGTH:
            return self._resolve(peer, forwarded_for)
        return self._cached(peer, forwarded_for)

    def _resolve(self, peer: str, forwarded_for: str) -> str:
        if not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            ip = parse_ip(hop.strip())
            if ip is None:
                return peer
            client = str(ip)
            if not self._contains(ip):
                break
        return client

    def _contains(self, ip: _IPAddress) -> bool:
        return any(ip in network for network in self._networks)


def address_key(address: str) -> str:
    """What a per-address budget counts for ``address``: an IPv4 address itself, an IPv6
    address's /64 (an IPv4-mapped one as its IPv4 address); anything else unchanged."""
    if ":" not in address:
        return address  # IPv4 (or empty): the common case, no parsing
    return _ipv6_key(address)


@functools.lru_cache(maxsize=4096)
def _ipv6_key(address: str) -> str:
    try:
        ip = IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(IPv6Network((int(ip) >> 64 << 64, 64)))
