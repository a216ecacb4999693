"""How well bruteguard runs fail2ban's own filters: the per-filter agreement table.

Runs every filter of the installed fail2ban package (``/etc/fail2ban/filter.d``) against the
package's sample logs, exactly as ``tests/test_fail2ban_compat.py`` does, and prints a
markdown table (filter, expectations, met, %) for docs/fail2ban.md.

    .venv/bin/python bench/fail2ban_agreement.py [--failures] [FILTER ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# The test module holds the one definition of how fail2ban's samples are read.
from test_fail2ban_compat import (
    FILTER_DIR,
    LOG_DIR,
    Agreement,
    agreement,
    shipped_filters,
)


def table(results: list[Agreement]) -> str:
    rows = ["| filter | expectations | met | % |", "|---|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r.name} | {r.expectations} | {r.met} | {r.percent:.1f} |")
    total = sum(r.expectations for r in results)
    met = sum(r.met for r in results)
    share = 100.0 * met / total if total else 0.0
    rows.append(f"| **all {len(results)} filters** | **{total}** | **{met}** | **{share:.1f}** |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("filters", nargs="*", help="filter names (default: all shipped)")
    parser.add_argument("--failures", action="store_true", help="list unmet expectations")
    args = parser.parse_args()
    if not (FILTER_DIR / "sshd.conf").is_file() or not LOG_DIR.is_dir():
        print(f"fail2ban is not installed ({FILTER_DIR}, {LOG_DIR}): apt-get install fail2ban")
        return 2
    started = time.perf_counter()
    results = [agreement(name) for name in (args.filters or shipped_filters())]
    print(table(results))
    print(f"\n({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    if args.failures:
        for r in results:
            for failure in r.failures:
                print(failure)
    return 0 if all(r.met == r.expectations for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
