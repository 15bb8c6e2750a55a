"""The gateway's route catalogue: each route is declared once, as an ``Operation``.

``gateway.app`` registers the handlers from it and ``gateway.openapi`` builds ``/openapi.json``
from it, so the documentation cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

__all__ = ["Auth", "Operation", "Parameter"]

Auth = Literal["none", "optional", "required"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Parameter:
    """A path or query parameter, documented in the OpenAPI spec."""

    name: str
    location: Literal["path", "query"]
    description: str
    required: bool = False
    schema: Mapping[str, object] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True, slots=True)
class Operation:
    """One HTTP route: its handler and everything the OpenAPI spec says about it.

    ``request`` is a pydantic model for a JSON body, or ``"multipart"`` for an upload.
    ``responses`` maps a status code to its body model (``None`` for no JSON body).
    ``scopes`` are the scopes a bearer token must carry (all of them); ``roles``, when set,
    the roles of which it must carry one.
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    auth: Auth = "required"
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    request: type[BaseModel] | Literal["multipart"] | None = None
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)
    content_type: str = "application/json"
    description: str = ""
    own_timeout: bool = False
    """The handler bounds its own time (an upload has ``upload_timeout``, a stream its max
    life); other routes get ``request_timeout``."""
