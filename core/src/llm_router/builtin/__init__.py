"""The components the core ships, registered through the core's own ``llm_router`` entry points."""
