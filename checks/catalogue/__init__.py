"""The check catalogue: one module per section of the guide, each with its metadata (`CHECK`) and `run`."""
