"""The scan-failure watcher: sweeps, webhook intake, leases, one claim → diagnose → post path; no Bolt."""
