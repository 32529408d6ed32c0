import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# the shared fake upstreams live in the repository's tests/fakes
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

from fakes import FakeAnthropic


@pytest.fixture(params=["aiohttp", "httpx"])
def http_client(request: pytest.FixtureRequest) -> str:
    """Each of the SDK's HTTP clients the plugin offers (``http_client``), in turn."""
    return str(request.param)


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def upstream(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    fake_anthropic.reset()
    return fake_anthropic
