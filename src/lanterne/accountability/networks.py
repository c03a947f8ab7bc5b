"""Which workstations may use the console (AC-04): the networks of `console.allowed_networks`, and
how a request's client address is read when reverse proxies stand in front of the console.

The address decides and is then forgotten: it is personal data (it points at a workstation, and so
at whoever sits at it), so neither the audit log nor the server log keeps it. A refusal is
recorded as "outside the allowed networks", with the user id when the request carries a session.

>>> gate = NetworkGate(["10.20.30.0/24"], trusted_proxies=["10.20.0.5/32"])
>>> gate.admits(gate.client("10.20.30.7", None))
True
>>> gate.admits(gate.client("10.20.0.5", "10.20.30.7"))  # through the trusted proxy
True
>>> gate.admits(gate.client("192.0.2.9", "10.20.30.7"))  # a forged header from elsewhere
False
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

EVERY_ADDRESS = frozenset({ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")})


def _address(text: str) -> Address | None:
    """An IP address, or None for what is not one (a hostname, `unknown`, garbage). IPv4 written
    inside IPv6 (`::ffff:10.0.0.1`, a dual-stack socket's view) is read as the IPv4 address."""
    try:
        found = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


class NetworkGate:
    """The allowed networks and the trusted proxies of one configuration (both already
    validated CIDR strings, `lanterne.config.schema.ConsoleSettings`)."""

    def __init__(self, allowed: Iterable[str], trusted_proxies: Iterable[str] = ()) -> None:
        self.allowed = tuple(ipaddress.ip_network(n) for n in allowed)
        self.trusted = tuple(ipaddress.ip_network(n) for n in trusted_proxies)

    @property
    def open_to_all(self) -> bool:
        """True when the list names `0.0.0.0/0` or `::/0`: a decision `lanterne serve` says aloud."""
        return any(n in EVERY_ADDRESS for n in self.allowed)

    def _trusted(self, address: Address) -> bool:
        return any(address in n for n in self.trusted)

    def client(self, peer: str | None, forwarded_for: str | None) -> Address | None:
        """The client's address: the socket's peer, unless the peer is a trusted proxy; then the
        `X-Forwarded-For` chain is walked from the right (each proxy appends the address it saw)
        past every trusted proxy, and the first other address is the client. None when that
        address cannot be read (no peer, or a garbled entry where the client should be): the
        caller refuses, since it cannot tell where the request comes from.

        >>> gate = NetworkGate(["10.0.0.0/8"], ["192.0.2.1/32", "192.0.2.2/32"])
        >>> str(gate.client("192.0.2.1", "203.0.113.7, 10.1.1.1, 192.0.2.2"))
        '10.1.1.1'
        >>> gate.client("192.0.2.1", "not-an-address") is None
        True
        """
        current = _address(peer) if peer else None
        if current is None or not self._trusted(current) or not forwarded_for:
            return current
        for hop in reversed(forwarded_for.split(",")):
            current = _address(hop)
            if current is None or not self._trusted(current):
                return current
        return current

    def admits(self, address: Address | None) -> bool:
        return address is not None and any(address in n for n in self.allowed)

    def describe(self) -> str:
        """One line for `lanterne serve` and the server log: who may use the console."""
        allowed = ", ".join(str(n) for n in self.allowed)
        if self.open_to_all:
            line = f"the console is open to EVERY address ({allowed}, console.allowed_networks)"
        else:
            line = f"the console answers only {allowed} (console.allowed_networks)"
        proxies = ", ".join(str(n) for n in self.trusted)
        return line + (
            f"; X-Forwarded-For is believed from {proxies} (console.trusted_proxies)"
            if proxies
            else "; no proxy is trusted, so X-Forwarded-For is ignored (console.trusted_proxies)"
        )


class RefusalTally:
    """How often refusals of requests without a session are recorded. A scanner probing the
    console from the internet sends thousands of requests; one audit record each would bury the
    log's real entries (and grow a signed chain nobody reads). So the first refusal of each
    `every` is recorded with the number left unrecorded since the previous record; refusals of
    a logged-in user are always recorded, one each, like any other refusal."""

    def __init__(self, every: timedelta = timedelta(minutes=1)) -> None:
        self.every = every
        self._last: datetime | None = None
        self._skipped = 0
        self._lock = threading.Lock()

    def take(self, now: datetime) -> int | None:
        """The number of refusals left unrecorded before this one when this one is to be
        recorded; else None (it is counted into the next record)."""
        with self._lock:
            if self._last is not None and now - self._last < self.every:
                self._skipped += 1
                return None
            skipped, self._skipped, self._last = self._skipped, 0, now
            return skipped
