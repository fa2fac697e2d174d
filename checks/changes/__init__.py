"""What changed: who changed what on the resources a diagnosis touched, since the last good scan."""
