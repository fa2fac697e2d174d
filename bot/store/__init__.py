"""Durable state of the watcher: runs seen and posted, scan cursors, last reports, watches, leases."""
