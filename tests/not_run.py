"""What a test does when a real part it needs (a server, a browser, network namespaces) is
missing here: skip loudly on a developer's machine, fail under CI=true, where a missing part
must not pass unnoticed."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def not_run(tests: str, reason: str) -> NoReturn:
    message = f"{tests} tests NOT RUN: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
