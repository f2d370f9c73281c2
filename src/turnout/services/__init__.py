"""The domain layer: every rule lives here, called by routes, the API, the CLI and jobs."""
