"""Assistants: Parley's agents, each with `graph_id` = its name. They come from the
configuration, so they are read-only here (creating or changing one answers 405)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from server.agent_protocol.serde import jsonable
from server.api.agent_protocol.common import assistant_body, find_agent
from server.api.agent_protocol.schemas import AssistantSearch
from server.api.deps import CurrentUser, PlatformDep

router = APIRouter(tags=["agent protocol"])


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, platform: PlatformDep, _user: CurrentUser
                            ) -> list[dict[str, Any]]:
    found = [assistant_body(name, agent) for name, agent in sorted(platform.agents.items())
             if body.graph_id in (None, name) and body.name in (None, name)
             and all(assistant_body(name, agent)["metadata"].get(k) == v
                     for k, v in (body.metadata or {}).items())]
    if body.sort_order == "desc":
        found.reverse()
    found = found[body.offset:body.offset + body.limit]
    if body.select:
        found = [{k: v for k, v in a.items() if k in body.select} for a in found]
    return found


@router.post("/assistants/count")
async def count_assistants(body: AssistantSearch, platform: PlatformDep, user: CurrentUser
                           ) -> int:
    return len(await search_assistants(body.model_copy(update={"limit": 1000, "offset": 0}),
                                       platform, user))


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, platform: PlatformDep, _user: CurrentUser
                        ) -> dict[str, Any]:
    name, agent = find_agent(platform, assistant_id)
    return assistant_body(name, agent)


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(assistant_id: str, platform: PlatformDep, _user: CurrentUser,
                              xray: bool | int = False) -> dict[str, Any]:
    _name, agent = find_agent(platform, assistant_id)
    drawn: dict[str, Any] = jsonable(agent.graph.get_graph(xray=xray).to_json())
    return drawn


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, platform: PlatformDep, _user: CurrentUser
                                ) -> dict[str, Any]:
    name, agent = find_agent(platform, assistant_id)
    graph = agent.graph
    return {"graph_id": name, "input_schema": graph.get_input_jsonschema(),
            "output_schema": graph.get_output_jsonschema(),
            "state_schema": graph.get_output_jsonschema(),
            "config_schema": {}, "context_schema": {}}


@router.get("/assistants/{assistant_id}/subgraphs")
async def get_assistant_subgraphs(assistant_id: str, platform: PlatformDep,
                                  _user: CurrentUser) -> dict[str, Any]:
    find_agent(platform, assistant_id)
    return {}  # Parley's graphs have none


@router.post("/assistants", include_in_schema=False)
@router.patch("/assistants/{assistant_id}", include_in_schema=False)
@router.delete("/assistants/{assistant_id}", include_in_schema=False)
async def read_only(_user: CurrentUser) -> None:
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED,
                        "assistants are Parley's agents, set in its configuration "
                        "(PARLEY_AGENTS_FILE): they cannot be created or changed here")
