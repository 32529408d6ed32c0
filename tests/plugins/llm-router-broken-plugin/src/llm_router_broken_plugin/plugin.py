"""Importing this module fails, as a plugin with a missing dependency would."""

import llm_router_dependency_that_does_not_exist  # noqa: F401
