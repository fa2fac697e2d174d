"""Pure renderers of reports and posts to Block Kit and text: no I/O, no Bolt."""
