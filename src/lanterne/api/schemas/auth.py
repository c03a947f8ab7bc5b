"""Login, logout and the current session."""

from __future__ import annotations

from pydantic import BaseModel


class UserOut(BaseModel):
    id: str
    login: str
    role: str
    scope: list[str]
    """Camera ids the user may see; `["*"]` for every camera."""


class SessionOut(BaseModel):
    """What the page keeps after logging in: who it is and the token its writes must send."""

    csrf_token: str
    user: UserOut
