"""`stormer rehearse`: the README's demo — the example storm fired at the local simulator."""

from __future__ import annotations

import json
import subprocess
import sys

from example import REPO


def test_rehearsal_of_the_example_storm() -> None:
    # In 10 s, as `make demo`: staging must be over by T for the lateness bound below, and
    # on a loaded machine planning and staging the example's 140 items can take longer than 3 s.
    rehearse = ["rehearse", "--in", "10s", "--json", "--storm", str(REPO)]
    result = subprocess.run(
        [sys.executable, "-m", "stormer", *rehearse],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        },
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["items"] == 8 and report["landed"] == 8
    assert (report["early"], report["duplicates"], report["lost"]) == (0, 0, 0)
    # Every participant with a contact gets the three reminders, in the simulator's inbox.
    reminders = report["reminders"]
    assert reminders["participants"] == 44
    assert reminders["planned"] == reminders["delivered"] == 3 * 44
    assert (reminders["early"], reminders["duplicates"], reminders["lost"]) == (0, 0, 0)
    assert report["states"] == {"sent": 8 + 3 * 44}
    assert report["lateness_ms"]["max"] < 5000
    assert not (REPO / "stormer.db").exists()  # the rehearsal's database was thrown away
