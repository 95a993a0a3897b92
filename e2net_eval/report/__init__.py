"""report stage of e2net-eval."""
