"""Configuration: the settings ladder (defaults < file < environment < flags), the registry of
organisations and the scoring rubric, each checked so that a mistake names its file and field."""
