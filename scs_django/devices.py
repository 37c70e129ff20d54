"""How a "your devices" page names a session's client: a browser and system
from the recorded user agent, a rough place from the recorded IP address.

Both are guesses from text the client chose to send, good enough for a
person to recognise their own devices ("Firefox on Windows") and nothing
more: no version numbers, no device models, no database of agents.
"""

from __future__ import annotations

import ipaddress
import re

# Checked in order: many agents name several browsers for compatibility
# (Edge and Opera say "Chrome" and "Safari", Chrome says "Safari"), so the
# most specific token comes first.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Vivaldi/", "Vivaldi"),
    ("YaBrowser/", "Yandex Browser"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("MSIE ", "Internet Explorer"),
    ("Trident/", "Internet Explorer"),
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("python-requests/", "Python Requests"),
)

_SYSTEMS = (
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("iPod", "iOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
    ("FreeBSD", "FreeBSD"),
    ("OpenBSD", "OpenBSD"),
)

_BOT = re.compile(r"bot\b|crawler|spider", re.IGNORECASE)


def _first(user_agent: str, table: tuple[tuple[str, str], ...]) -> str | None:
    return next((name for token, name in table if token in user_agent), None)


def describe_agent(user_agent: str) -> str:
    """A short, human name for the client that sent ``user_agent``, such as
    "Firefox on Windows"; "" when nothing was recorded, "Unknown browser" when
    nothing in it is recognised."""
    user_agent = user_agent.strip()
    if not user_agent:
        return ""
    if _BOT.search(user_agent):
        return "Automated client"
    browser = _first(user_agent, _BROWSERS)
    system = _first(user_agent, _SYSTEMS)
    if browser and system:
        return f"{browser} on {system}"
    if browser:
        return browser
    if system:
        return f"Unknown browser on {system}"
    return "Unknown browser"


def describe_address(ip: str | None) -> str:
    """Where the recorded ``ip`` roughly is: its network, not the address.

    scs_django stores the /24 (IPv4) or /64 (IPv6) network unless
    ``SCS["IP_FULL"]`` is on; either way this shows only that network, as
    ``203.0.113.x`` or ``2001:db8:1:2::/64``, so the page never shows a full
    address. "" when nothing was recorded.
    """
    if not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if address.version == 4:
        return ".".join(str(address).split(".")[:3] + ["x"])
    network = ipaddress.ip_network(f"{address}/64", strict=False)
    return str(network)
