"""Shared test settings: the fixtures ``repo`` and ``shared_data``, and the ``e2e`` marker.

Tests take paths from these fixtures, never by importing a conftest module: pytest imports every
``conftest.py`` under the one module name ``conftest``, so what ``from conftest import`` finds
depends on which was imported last. Helper modules (``frame_wcs``, ``hats_catalog``, ...) are
plain modules here and in tests/e2e (pyproject's ``pythonpath``).
"""

from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]
_E2E = _REPO / "tests" / "e2e"


@pytest.fixture(scope="session")
def repo():
    """The repository's root directory (the one that holds the Snakefile)."""
    return _REPO


@pytest.fixture(scope="session")
def shared_data(repo):
    """``../shared/data/real`` beside the repository: the real test data (its README says what).

    A test that needs it is skipped, with the path in the reason, when the directory is absent (a
    clone without the data); when it is present, a file missing from it is a failure.
    """
    path = repo.parent / "shared" / "data" / "real"
    if not path.is_dir():
        pytest.skip(f"real data not found: {path} is absent")
    return path


def pytest_collection_modifyitems(config, items):
    """Mark every test under tests/e2e ``e2e`` (they run the workflow): ``-m "not e2e"`` leaves them out."""
    for item in items:
        if item.path.is_relative_to(_E2E):
            item.add_marker(pytest.mark.e2e)
