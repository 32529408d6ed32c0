"""A plugin that registers a scorer under a name the core already uses."""
