"""The DuckDB store: the only code that speaks SQL (`db`), its numbered migrations, and the
versioned JSON blobs that results are kept in."""
