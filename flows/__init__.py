"""Pipeline stages. Importing this package pins the offline, no-telemetry environment
before Prefect, DVC or transformers are imported by any stage module."""
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The value each variable must have so that nothing reaches for the network or reports usage;
# `personas doctor` checks these, and `make run` gets them through `personas repro`.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}
_RUN_ENV = {
    "PREFECT_HOME": str(PROJECT_ROOT / ".prefect"),
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # The temporary server migrates a fresh database first; on a busy 2-core machine that
    # outlasts Prefect's 20 s default, and the stage would fail before it starts.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "TOKENIZERS_PARALLELISM": "false",
}
for _key, _value in {**OFFLINE_ENV, **_RUN_ENV}.items():
    os.environ.setdefault(_key, _value)
