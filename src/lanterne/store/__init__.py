"""Where events, evidence records and statistics go: SQLite by default, PostgreSQL by URL."""

from lanterne.store.db import StoreError, create_engine_for, migrate
from lanterne.store.repository import CountsRow, EventRow, EvidenceRow, Store

__all__ = ["CountsRow", "EventRow", "EvidenceRow", "Store", "StoreError", "create_engine_for", "migrate"]
