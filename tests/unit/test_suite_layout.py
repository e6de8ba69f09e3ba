"""The test suite's own rules: paths come from fixtures, and `make test-unit` leaves out exactly the
tests that run the workflow (tests/e2e, marked e2e by tests/conftest.py)."""

import re
import subprocess
import sys


def test_no_test_imports_from_a_conftest(repo):
    """pytest imports every conftest.py as the one module ``conftest``: an import from it finds
    whichever was imported last. Paths come from the fixtures repo and shared_data."""
    pattern = re.compile(r"^\s*(from\s+conftest\s+import|import\s+conftest\b)", re.MULTILINE)
    files = sorted([*(repo / "tests").rglob("*.py"), *(repo / "bench").glob("*.py")])
    assert len(files) > 40
    offenders = [str(f.relative_to(repo)) for f in files if pattern.search(f.read_text())]
    assert offenders == []


def test_not_e2e_selects_the_unit_tests_and_no_test_under_tests_e2e(repo):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not e2e",
            "tests/e2e/test_paths.py",
            "tests/unit/test_stats.py",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert ids and all(i.startswith("tests/unit/test_stats.py::") for i in ids), ids
    selected, total, deselected = map(
        int, re.search(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", proc.stdout).groups()
    )
    assert selected == len(ids) and deselected == total - selected >= 1  # test_paths' tests
