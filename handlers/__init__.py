"""Entry points that turn Slack events, alerts and scan failures into diagnoses, and reports into Block Kit."""
