"""An OpenAI-compatible API: the agents as models of OpenAI's Chat Completions API.

`wire` is the request and response format, `errors` OpenAI's error shape for these routes,
`routes` the endpoints, which format the turn runner's events."""

from server.api.openai.routes import router

__all__ = ["router"]
