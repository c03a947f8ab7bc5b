"""Event search: the query (no parameter about a person, unknown ones refused) and one page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lanterne.accountability.alerts import AlertState
from lanterne.accountability.search import Sort
from lanterne.api.deps import MaybePurpose
from lanterne.core.types import EventType

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class SearchQuery(BaseModel):
    """Unknown parameters are refused (422), never ignored: see `lanterne.api.routes.search`."""

    model_config = ConfigDict(extra="forbid")

    purpose: MaybePurpose = Field(None, description="Why you search recordings.")
    from_: datetime | None = Field(None, alias="from", description="Start at or after.")
    to: datetime | None = Field(None, description="Start before.")
    camera: Annotated[str | None, Field(pattern=ID_PATTERN)] = None
    zone: Annotated[str | None, Field(pattern=ID_PATTERN)] = None
    type: EventType | None = None
    object_class: Annotated[str | None, Field(pattern=r"^[a-z_]{1,32}$")] = None
    state: AlertState | None = None
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    after: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,400}$")] = Field(
        None, description="Cursor of the next page (a page's `next`); replaces `page`."
    )
    page_size: Annotated[int, Field(ge=1, le=200)] = 50
    sort: Sort = Sort.START_DESC


class EventOut(BaseModel):
    id: str
    type: str
    camera: str
    zone: str
    start: datetime
    end: datetime
    confidence: float
    object_class: str | None
    mode: str
    state: str


class SearchPage(BaseModel):
    total: int = Field(description="Matches over all pages, exact up to 10,000 (see total_exact).")
    total_exact: bool = Field(description="False: counting stopped at `total`, there are more.")
    total_estimated: bool = Field(
        False, description="True: counting ran out of time; `total` is the database's rounded estimate."
    )
    page: int
    page_size: int
    items: list[EventOut]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last.")
