"""training stage of e2net-eval."""
