"""How long `ccqm demo` takes end to end on this machine (target: under 60 s on 2 cores).

Runs the demo three times into a temporary folder (the first also warms imports and caches) and
prints the median wall time, with the harvest's item count so a shrinking world is noticed.
Ends with one line `demo: SECONDS`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from harvester.demo import run_demo


def main() -> None:
    times = []
    for n in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = run_demo(Path(tmp) / "demo")
            times.append(time.perf_counter() - started)
            print(f"run {n + 1}: {times[-1]:.2f} s, {result.report.totals['new']} items, "
                  f"{len(result.scores)} organisations")
    print(f"demo: {statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
