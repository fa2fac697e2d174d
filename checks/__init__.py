"""The diagnosis engine: knows Purview, ARM and Key Vault, knows nothing of Slack."""
