"""The services that take part in the pipeline, by the names used in envelopes and key rings."""

from __future__ import annotations

from typing import Literal, get_args

Service = Literal["identity", "gateway", "worker", "parser", "audit"]
SERVICES: tuple[Service, ...] = get_args(Service)
