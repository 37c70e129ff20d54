"""What may be recorded about a session's client: its IP address and user agent.

Both are off by default. An IP address is truncated to its /24 (IPv4) or /64
(IPv6) network unless ``SCS["IP_FULL"]`` asks for the full address.

The address is ``REMOTE_ADDR``, or, behind reverse proxies, the entry of
``SCS["TRUSTED_PROXY_HEADER"]`` that the outermost of ``SCS["TRUSTED_PROXY_COUNT"]``
proxies added, counted from the right.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from . import conf

USER_AGENT_LENGTH = 256

# Networks kept when SCS["IP_FULL"] is off, by IP version.
_PREFIX = {4: 24, 6: 64}


def client_of(request: Any) -> tuple[str | None, str]:
    """The ``(ip, user_agent)`` to store for ``request`` under the RECORD_* settings."""
    ip = _ip(request) if conf.get("RECORD_IP") else None
    user_agent = ""
    if conf.get("RECORD_USER_AGENT"):
        user_agent = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH]
    return ip, user_agent


def _client_address(request: Any) -> str:
    header = conf.get("TRUSTED_PROXY_HEADER")
    # Only a header the site names is trusted: any client can send one.
    value = request.META.get(header) if header else None
    if value is not None:
        # Each proxy appends the address it was connected from to what it
        # received, so whatever the client wrote comes first: the outermost
        # trusted proxy's entry is the one TRUSTED_PROXY_COUNT from the right.
        entries = value.split(",")
        proxies = conf.get("TRUSTED_PROXY_COUNT")
        if len(entries) >= proxies:
            client: str = entries[-proxies].strip()
            return client
    # No header, or fewer entries than proxies: the request did not pass
    # through all of them, so any entry may be the client's own. REMOTE_ADDR,
    # the peer that connected, never is.
    peer: str = request.META.get("REMOTE_ADDR", "")
    return peer


def _ip(request: Any) -> str | None:
    # A scope ("fe80::1%eth0") is local to the server and not storable.
    raw = _client_address(request).split("%")[0]
    try:
        address: Any = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if conf.get("IP_FULL"):
        return str(address)
    network = ipaddress.ip_network(
        f"{address}/{_PREFIX[address.version]}", strict=False
    )
    return str(network.network_address)
