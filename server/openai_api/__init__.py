"""An OpenAI-compatible API: the agents as models of OpenAI's Chat Completions API.

`wire` is the request and response format, `errors` OpenAI's error shape for these routes,
`run` one run of an agent on a client's conversation, `routes` the endpoints."""

from server.openai_api.routes import router

__all__ = ["router"]
