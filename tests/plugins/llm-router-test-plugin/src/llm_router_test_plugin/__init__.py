"""Test plugin for llm-router."""
