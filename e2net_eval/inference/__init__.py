"""inference stage of e2net-eval."""
