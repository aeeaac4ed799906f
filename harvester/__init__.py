"""ccqm's application package: settings, safe HTTP, collectors, the DuckDB store and the pipeline.

`scoring` and `reports` are pure libraries; only this package does I/O.
"""

__version__ = "0.1.0"
