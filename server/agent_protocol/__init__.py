"""The Agent Protocol (LangGraph Server's API) over Parley: assistants are the agents,
threads are the checkpointer's threads, runs go through the one runner. This package
holds what the protocol keeps and does; its routes are in server/api/agent_protocol/."""
