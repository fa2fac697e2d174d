"""Entry points turning Slack events, alerts and scan failures into diagnoses; reports into Block Kit."""
