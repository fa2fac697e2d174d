"""Bolt listeners and their Slack I/O: commands, mentions, the Re-run button, posting, the watcher's posts."""
