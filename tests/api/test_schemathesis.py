"""Schemathesis, with every check, against a real node process and its own OpenAPI document.

The node runs every role whose routes are in the document (the meter with pushed
readings, analytics, the concentrator, the web interface), on loopback, with its token.
Schemathesis reads ``/api/v1/openapi.json`` and runs its phases (examples, coverage,
fuzzing, stateful) with all its checks: no 5xx but the documented 503s, every status,
content type and body as documented, schema-violating requests refused, schema-valid ones
accepted (with the documented refusals of tests/api/schemathesis.toml), authentication
enforced, 405 with ``Allow`` for undeclared methods. Deterministic generation, one worker.

Schemathesis lives in an environment of its own (requirements/schemathesis.in says why);
``./scripts/test`` builds it and runs this file as its own step. Elsewhere set
``TRANSACTIVA_SCHEMATHESIS`` to a ``schemathesis`` command. Never skipped: without the
command it fails saying how to get it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.api.node import REPO, NodeProcess

HERE = Path(__file__).parent
COMMAND = Path(
    os.environ.get("TRANSACTIVA_SCHEMATHESIS", REPO / ".venv-schemathesis" / "bin" / "schemathesis")
)
# Cases per operation and phase: about two minutes on a loaded two-core machine.
MAX_EXAMPLES = int(os.environ.get("TRANSACTIVA_SCHEMATHESIS_EXAMPLES", "40"))
RUN_SECONDS = 900


def test_the_node_keeps_its_openapi_document(node: NodeProcess, tmp_path: Path) -> None:
    assert COMMAND.is_file(), (
        f"schemathesis is not at {COMMAND}: run ./scripts/test (it builds .venv-schemathesis "
        "from requirements/schemathesis.txt) or set TRANSACTIVA_SCHEMATHESIS"
    )
    result = subprocess.run(
        [
            str(COMMAND),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{node.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {node.token}",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--generation-deterministic",
            "--workers",
            "1",
            "--request-timeout",
            "45",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py")},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, _failures(output)
    assert "Selected: " in output, output[-3000:]
    # Every operation of the document was tested, none errored.
    assert "Errored" not in output, output[-3000:]
    assert node.errors_logged() == [], "\n".join(node.errors_logged())
    assert node.stop() == 0


def _failures(output: str) -> str:
    """Schemathesis's failures and errors (not its advice), and its summary."""
    keep = []
    for title in ("ERRORS", "FAILURES", "SUMMARY"):
        start = output.find(f"= {title} =")
        if start >= 0:
            end = output.find("\n=====", output.find("\n", start))
            keep.append(output[start : end if end > 0 else None])
    return "\n".join(keep)[-30000:] or output[-5000:]
