"""FSM tests build on the scheduler's and state store's test builders."""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
for folder in ("scheduler", "state"):
    path = str(TESTS / folder)
    if path not in sys.path:
        sys.path.insert(0, path)
