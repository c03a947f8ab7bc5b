"""The cluster tests run against a real `nats-server -js` of their own (tests/support/nats.py)."""

from tests.support.nats import nats_server

__all__ = ["nats_server"]
