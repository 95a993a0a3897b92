"""Where a job graph runs: `base.Launcher` and its local and submitit implementations."""
