"""The use-cases the entry points call: harvest, score, dossiers, refresh (harvest -> score ->
dossier), overrides, status, classify, export (WARC). Each takes settings and returns plain
results; none prints."""
