"""metrics stage of e2net-eval."""
