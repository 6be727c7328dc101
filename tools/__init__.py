"""Parley's tools: LangChain tools, built-in or from plugins (entry-point group `parley.tools`)."""
