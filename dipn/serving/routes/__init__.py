"""The endpoint's routes, one ``APIRouter`` per audience, each route's auth a dependency of it.

``devices``: ``GET /healthz``, ``POST /devices`` (the enrollment token), ``GET /coupons/{id}``
(a signed request) and ``POST /scores`` (signed; served by ``app.ScorePosts`` without the router).
``operators``: campaigns, decisions, orders, metrics and reports (the operator token).
``dashboard``: the operator's HTML pages. Routes read the server's settings from
``request.app.state.config`` (``app.create_app`` puts them there); operation ids are the handlers'
names, so a generated client's functions are named after them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Ids are 64-bit in the database; a larger one in a URL is a 422, not a driver overflow (a 500).
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1)]
