"""Models every area shares: the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """Every refusal's body: one sentence saying what to do, or FastAPI's list of validation
    errors (where and why each value was refused)."""

    detail: str | list[dict[str, Any]]


class Message(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 422, 429)
}
"""The refusals a console route may answer, documented with their body so that a client (and the
schema fuzzing) knows their shape."""
