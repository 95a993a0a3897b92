"""workflows stage of e2net-eval."""
