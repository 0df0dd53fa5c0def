import os
import sys
from pathlib import Path

CLUSTER = Path(__file__).resolve().parents[1]
ROOT = CLUSTER.parent
sys.path.insert(0, str(CLUSTER))


def stepwire_bin() -> str:
    for candidate in (os.environ.get("STEPWIRE_BIN"), ROOT / "target/debug/stepwire", ROOT / "target/release/stepwire"):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError("no stepwire binary: cargo build -p stepwire-runtime, or set STEPWIRE_BIN")
