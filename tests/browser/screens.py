"""Save a screenshot of every admin page at 1366 px, in French, into docs/screens/.

    TEST_REDIS_URL=redis://127.0.0.1:6379/2 python -m tests.browser.screens

It runs the laptop-width layout test (tests/browser/test_admin_pages_fit_and_read.py) with
SIRA_SCREENS_DIR set, so the pictures are of pages that passed its checks; `make test` never sets
it, and leaves the repository alone.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.browser.admin_pages import ROOT

TEST = "tests/browser/test_admin_pages_fit_and_read.py::test_every_admin_page_fits_its_width_and_axe_finds_nothing_serious[1366px]"


def main() -> int:
    folder = ROOT / "docs" / "screens"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # a page that is gone leaves no picture behind
        old.unlink()
    os.environ["SIRA_SCREENS_DIR"] = str(folder)
    os.chdir(ROOT)
    return pytest.main([TEST, "-q", "-p", "no:cacheprovider", "-p", "no:logging"])


if __name__ == "__main__":
    sys.exit(main())
