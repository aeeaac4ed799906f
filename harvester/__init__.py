"""ccqm's application package: settings, safe HTTP, collectors, the DuckDB store and the pipeline.

`scoring` and `reports` are pure libraries; only this package does I/O.
"""

import os

__version__ = "0.1.0"

# DuckDB's own allocator (jemalloc, on Linux) keeps what it frees for later by default, and a
# harvest held ~40 MB of its peak that way (bench/crawl.py): give freed pages back at once.
# Read once, when DuckDB is first imported, hence here; a value set by the user wins.
os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", "narenas:1,tcache:false,dirty_decay_ms:0,muzzy_decay_ms:0")
