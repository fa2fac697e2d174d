"""The composition root: settings, CLI, wiring of the Azure clients (and later the Slack app)."""
