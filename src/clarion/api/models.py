"""`/v1/models`: the brand's learned models — send times (`sto`) and recommendations
(`recs`) — by version, and a new version trained now."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from clarion import service
from clarion.api.auth import Auth
from clarion.api.calls import call, respond
from clarion.api.errors import ApiError
from clarion.domain.keys import ApiKey
from clarion.domain.ports import Clock
from clarion.service.intelligence import ModelRow

Kind = Literal["sto", "recs"]


class TrainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(description="sto (send times) or recs (recommendations).")


def shown(m: ModelRow) -> dict[str, Any]:
    """A version as the API shows it: what it learnt from and how long it took, not its
    per-hour or per-product detail."""
    brief = {k: v for k, v in m.summary.items() if not isinstance(v, list | dict)}
    return {
        "id": m.id, "kind": m.kind, "version": m.version, "trained_at": m.trained_at,
        "data_until": m.data_until, "output_kept": m.pruned_at is None, "summary": brief,
    }  # fmt: skip


def router(svc: service.Services, auth: Auth, clock: Clock) -> APIRouter:
    r = APIRouter(tags=["models"])
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]

    @r.get("/models", summary="The brand's learned models, newest version first")
    async def list_models(key: Reader, kind: Annotated[Kind | None, Query()] = None) -> Response:
        rows = await call(service.intelligence.listed(svc.pool, key.brand_id, kind))
        return respond({"data": [shown(m) for m in rows], "next_cursor": None})

    @r.post("/models/train", summary="Train a new version now")
    async def train(body: TrainBody, key: Writer) -> Response:
        """The `intelligence` worker role trains by itself when there is something new to
        learn; this trains now (in this request: seconds for a large brand). 409 when there
        is nothing to learn from yet."""
        model = await call(
            service.intelligence.train(svc.pool, key.brand_id, body.kind, now=clock.now())
        )
        if model is None:
            raise ApiError(409, f"nothing to learn a {body.kind} model from yet", field="kind")
        return respond(shown(model), 201)

    return r
