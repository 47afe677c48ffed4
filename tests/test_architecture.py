"""The layers' dependency directions (pyproject.toml, [tool.importlinter]) hold: the core imports
no database, HTTP client, Apprise or terminal library; channels know no outbox, dispatcher or
CLI; the simulator shares no code with the clients; no package has an import cycle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
