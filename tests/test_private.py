"""Owner-only folders and files: what holds participants' data is readable by no one else."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from stormer.private import private_file, private_folder, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_private_folder_and_its_missing_parents_are_0700(tmp_path: Path) -> None:
    folder = private_folder(tmp_path / ".stormer" / "alerts")
    assert mode(folder) == 0o700 and mode(folder.parent) == 0o700
    (tmp_path / "open").mkdir(mode=0o755)
    (tmp_path / "open").chmod(0o755)
    assert mode(private_folder(tmp_path / "open")) == 0o700  # tightened


def test_private_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        created = private_file(tmp_path / "db")
        write_private(tmp_path / "cache.json", b"{}")
    finally:
        os.umask(old)
    assert mode(created) == 0o600 and mode(tmp_path / "cache.json") == 0o600
    assert (tmp_path / "cache.json").read_bytes() == b"{}"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_participants_contact_and_its_host_are_masked_in_every_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from stormer.notify.sender import apprise_module
    from stormer.secrets import clean_error, private_contact, redact

    apprise_module()  # how stormer reaches Apprise: its log is masked from then on

    private_contact("json://hooks.privacy-test.example.net/hook/abc")
    private_contact("@ana:home.privacy-test.example.org")
    with caplog.at_level(logging.INFO):
        logging.getLogger("apprise").warning(
            "Sending JSON notification to hooks.privacy-test.example.net"
        )
        logging.getLogger("stormer.dispatch").info("to @ana:home.privacy-test.example.org: sent")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "privacy-test" not in logged and logged.count("<contact>") == 2, logged
    assert "privacy-test" not in clean_error("refused by home.privacy-test.example.org")
    # The capture that reads Apprise's log by address asks for them to be kept.
    assert redact("hooks.privacy-test.example.net", contacts=False).startswith("hooks.")


def test_a_credential_that_is_not_secret_is_not_masked_in_logs() -> None:
    """A Matrix user name "storm" as a secret would turn every "stormer" in a log into
    "<redacted>er": fields a plugin declares public are held as Secrets but not redacted."""
    from dataclasses import replace

    from stormer.channels.matrix import Matrix
    from stormer.secrets import Secret, redact, resolve
    from stormer.storm import Account

    account = Account(
        "m",
        "matrix",
        (),
        "https://matrix.example.org",
        "!r:x",
        None,
        (("user", "MATRIX_USER_PUBLIC_T"), ("password", "MATRIX_PW_PUBLIC_T")),
        None,
    )
    found = resolve(
        replace(account),
        Matrix().credential_fields_for(account),
        {"MATRIX_USER_PUBLIC_T": "stormy", "MATRIX_PW_PUBLIC_T": "pw-secret-public-t"},
        public=Matrix.public_credentials,
    )
    assert isinstance(found["user"], Secret) and repr(found["user"]) == "Secret('***')"
    assert redact("stormy stormer pw-secret-public-t") == "stormy stormer <redacted>"


def test_a_value_too_short_to_be_a_credential_does_not_mangle_logs() -> None:
    from stormer.secrets import SHORTEST_REDACTED, Secret, redact

    short = Secret("tok")
    assert repr(short) == "Secret('***')" and short.reveal() == "tok"
    assert redact("GET /oauth/token?access_token=x") == "GET /oauth/token?access_token=x"
    Secret("q" * SHORTEST_REDACTED)
    assert redact("qqqqqq") == "<redacted>"
