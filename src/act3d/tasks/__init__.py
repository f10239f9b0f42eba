"""One module per CLI sub-command; each exposes a config schema and a ``run(config, ...)`` function."""
