import sys
from pathlib import Path

# the shared fake upstreams live in the repository's tests/fakes
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
