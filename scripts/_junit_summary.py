"""Print one closing line for several pytest JUnit XML reports.

Usage: python scripts/_junit_summary.py REPORT.xml [REPORT.xml ...]

Prints ``pytest: N passed, N failed[, N skipped]`` and exits 1 when a report is
missing, unreadable, records a failure or error, or when no test ran at all.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> int:
    """Sum the reports and print the closing line."""
    tests = failures = errors = skipped = 0
    status = 0
    for name in paths:
        path = Path(name)
        if not path.is_file():
            print(f"summary: {path} is missing (a pytest session did not finish)")
            status = 1
            continue
        try:
            root = ET.parse(path).getroot()  # noqa: S314 - written by our own pytest run
        except ET.ParseError as err:
            print(f"summary: {path} is not valid JUnit XML: {err}")
            status = 1
            continue
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            tests += int(suite.get("tests", "0"))
            failures += int(suite.get("failures", "0"))
            errors += int(suite.get("errors", "0"))
            skipped += int(suite.get("skipped", "0"))
    failed = failures + errors
    passed = tests - failed - skipped
    line = f"pytest: {passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print()
    print(line)
    if failed or tests == 0:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
