"""`e2net-eval ablation`: the paper's six configurations end to end, resumable, replicated.

Steps, replicates, resume and the run layout: docs/reports.md, "`e2net-eval ablation`";
SLURM: docs/cluster.md. Replicates are expanded inside `job_graph`, so a launcher runs them
without knowing about them; every step is a function of its inputs, so any worker count
gives a one-worker run's results (the small profile trains with one torch thread per process).

Modules: `args` (the arguments, checked once), `graph` (`Step`, the job graph), `steps`
(what each step does), `run` (running and resuming a run, RUN/ablation.json).
"""

from e2net_eval.workflows.ablation.args import AblationArgs
from e2net_eval.workflows.ablation.graph import Step, job_graph, plan
from e2net_eval.workflows.ablation.run import run_ablation

__all__ = ["AblationArgs", "Step", "job_graph", "plan", "run_ablation"]
