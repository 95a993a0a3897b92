"""Where a job graph runs: `base.Launcher` and its implementations, local worker processes
(`local`) and submitit jobs on SLURM or this machine (`cluster`, all of submitit in
`submitit`); `choose.make_launcher` builds the one a run asks for."""
