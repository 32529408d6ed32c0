# The provider conformance kit's fixtures, for every test under this repository (plugins, examples, e2e).
pytest_plugins = ["llm_router.testing"]
