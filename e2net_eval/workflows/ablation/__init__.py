"""`e2net-eval ablation`: the paper's six configurations end to end, resumable, replicated.

Steps (names as recorded in RUN/ablation_state.json):

```
data:lits, data:ircadb    phantom LiTS and 3DIRCADb sets (only without --lits)
overlap                   3DIRCADb patients found among the LiTS cases (data.find_overlap)
split                     RUN/split.json: make_split(seed, exclude=overlap if leak-free)
cache                     the training run's split and slice cache (training.prepare_run)
train:<config>            every configuration (training.train); none depends on another
                          (stage 2 trains on the reference liver boxes)
predict:<set>:<stage1>    stage-1 liver of the LiTS validation cases and of 3DIRCADb
predict:<set>:<config>    stage 2 inside that stage-1 liver (inference.predict)
evaluate:<set>:<config>   RUN/eval/<set>/<config>/summary.json (metrics.evaluate)
report                    RUN/report (report.build.write_report)
```

Replicates (`--replicates K`, `--split-seeds`, `--seeds`): replicate r has its own split
seed and training seed (default: seed + r for both) and repeats the steps from ``split`` to
``evaluate`` under the names ``rep<r>:split``, ``rep<r>:train:<config>``, ... in its own
folder (`rundir.replicate_dir`). Replicate 0 keeps the plain names and the plain layout, so
the default one-replicate run is exactly the run it always was. The phantom data and the
overlap are made once (they do not depend on the split), every replicate's training reads
replicate 0's slice cache, and the one ``report`` step waits for every evaluation. The
expansion is inside `job_graph`: whatever runs the graph (a launcher) runs replicates
without knowing about them.

The steps form a graph of typed `Step`s (`graph.job_graph`); `--workers N` runs independent
steps in N processes at once (`launch.local`, `workflows.jobs`), the longest chain first.
`--launcher slurm` runs the same graph as SLURM jobs through submitit (`launch.cluster`: one
job per configuration's training, one for its predictions and evaluations, one for the data
preparation). Every step is a function of its inputs, so the results equal a one-worker
run's (the small profile trains with one torch thread per process either way). A step is marked done only after it finished, so a killed run resumes
at the steps not done (training itself resumes from its last checkpoint); a rerun with the
same arguments does nothing; a rerun with other arguments into the same folder is refused,
except one that only appends replicates (`fingerprint_extends`): the finished replicates are
kept and the steps that read every replicate (the report) run again. A finished step whose
dependency is not finished is stale and runs again.
The run-dir layout is described in `e2net_eval.rundir`; the configurations, their order,
their step budgets and relative step costs come from the catalogue
(`reference_models/registry.py`).

Modules: `args` (the arguments, checked once), `graph` (`Step`, the job graph), `steps`
(what each step does), `run` (running and resuming a run, RUN/ablation.json).
"""

from e2net_eval.workflows.ablation.args import AblationArgs
from e2net_eval.workflows.ablation.graph import Step, job_graph, plan
from e2net_eval.workflows.ablation.run import run_ablation

__all__ = ["AblationArgs", "Step", "job_graph", "plan", "run_ablation"]
