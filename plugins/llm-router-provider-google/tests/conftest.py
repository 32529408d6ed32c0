import sys
from pathlib import Path

# the shared fake upstreams live in the repository's tests/fakes
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

from fakes import FakeGemini
from llm_router.testing import serve_upstream

fake_gemini, upstream = serve_upstream(FakeGemini, "fake_gemini")
