# Run challengeR 1.0.5 on a long CSV (task, entry, case, value; NA allowed) and write what
# e2net-eval's ranking is compared with (tests/report/test_ranking_agreement.py, and the
# timing of `e2net-eval bench rank`).
#
# Usage: Rscript tools/challenger_agreement.R CHALLENGER_SRC DATA.csv OUT_DIR NA_TREAT NBOOT SEED [SMALL_BETTER] [METHODS]
#   CHALLENGER_SRC  a checkout of github.com/wiesenfa/challengeR (its R/ folder is sourced:
#                   the package's Import 'relations' is not installable here, and only the
#                   consensus needs it, so the package itself is not installed)
#   NA_TREAT        na.rm, or a number (challengeR's na.treat)
#   NBOOT           bootstrap draws per method (0: none)
#   SMALL_BETTER    TRUE or FALSE (default FALSE)
#   METHODS         comma-separated subset of mean,median,rank_then_aggregate,test_then_rank
#
# Writes OUT_DIR/rankings.csv (task, method, entry, value, rank), significance.csv (task,
# entry, other, significant), boot_ranks.csv (task, method, draw, entry, rank), tau.csv
# (task, method, draw, tau: challengeR's kendall.bootstrap.list) and seconds.csv (method,
# seconds of the bootstrap).
# This file only calls challengeR's exported functions; it contains none of its code.

args <- commandArgs(trailingOnly = TRUE)
src <- args[1]; data_path <- args[2]; out <- args[3]
na_treat <- if (args[4] == "na.rm") "na.rm" else as.numeric(args[4])
nboot <- as.integer(args[5]); seed <- as.integer(args[6])
small_better <- if (length(args) >= 7) as.logical(args[7]) else FALSE
methods <- if (length(args) >= 8) strsplit(args[8], ",")[[1]] else
  c("mean", "median", "rank_then_aggregate", "test_then_rank")

suppressPackageStartupMessages({
  library(dplyr); library(plyr); library(reshape2); library(tidyr); library(purrr); library(ggplot2)
})
for (f in list.files(file.path(src, "R"), pattern = "\\.R$", full.names = TRUE)) source(f)
dir.create(out, showWarnings = FALSE, recursive = TRUE)

data <- read.csv(data_path, colClasses = c(task = "character", entry = "character", case = "character"))
ch <- suppressMessages(as.challenge(data, by = "task", algorithm = "entry", case = "case",
                                    value = "value", smallBetter = small_better, na.treat = na_treat))

rank_with <- function(method) {
  switch(method,
    mean = aggregateThenRank(ch, FUN = mean, ties.method = "min"),
    median = aggregateThenRank(ch, FUN = median, ties.method = "min"),
    rank_then_aggregate = rankThenAggregate(ch, FUN = mean, ties.method = "min"),
    test_then_rank = testThenRank(ch, alpha = 0.05, p.adjust.method = "none", ties.method = "min"),
    test_then_rank_holm = testThenRank(ch, alpha = 0.05, p.adjust.method = "holm", ties.method = "min"))
}

rankings <- list(); boots <- list(); taus <- list(); seconds <- list()
for (method in c(methods, if ("test_then_rank" %in% methods) "test_then_rank_holm")) {
  r <- suppressWarnings(rank_with(method))
  for (task in names(r$matlist)) {
    m <- r$matlist[[task]]
    rankings[[length(rankings) + 1]] <- data.frame(task = task, method = method,
      entry = rownames(m), value = sprintf("%.17g", m[, 1]), rank = m$rank)
  }
  if (nboot > 0 && method != "test_then_rank_holm") {
    set.seed(seed, kind = "L'Ecuyer-CMRG")
    t0 <- proc.time()[["elapsed"]]
    b <- suppressMessages(suppressWarnings(bootstrap(r, nboot = nboot, progress = "none")))
    seconds[[length(seconds) + 1]] <- data.frame(method = method,
                                                 seconds = proc.time()[["elapsed"]] - t0)
    ken <- kendall.bootstrap.list(b)
    for (task in names(b$bootsrappedRanks)) {
      br <- b$bootsrappedRanks[[task]]
      colnames(br) <- seq_len(ncol(br))
      long <- reshape2::melt(as.matrix(br), varnames = c("entry", "draw"), value.name = "rank")
      boots[[length(boots) + 1]] <- data.frame(task = task, method = method, long)
      taus[[length(taus) + 1]] <- data.frame(task = task, method = method,
                                             draw = seq_along(ken[[task]]), tau = ken[[task]])
    }
  }
}
write.csv(do.call(rbind, rankings), file.path(out, "rankings.csv"), row.names = FALSE)

sig <- list()
for (how in c("none", "holm")) {
  d <- suppressWarnings(decision.challenge(ch, na.treat = na_treat, alpha = 0.05, p.adjust.method = how))
  for (task in names(d)) {
    m <- d[[task]]
    long <- reshape2::melt(unclass(m)[, , drop = FALSE], varnames = c("entry", "other"),
                           value.name = "significant")
    sig[[length(sig) + 1]] <- data.frame(task = task, p_adjust = how, long)
  }
}
write.csv(do.call(rbind, sig), file.path(out, "significance.csv"), row.names = FALSE)
if (length(boots)) {
  write.csv(do.call(rbind, boots), file.path(out, "boot_ranks.csv"), row.names = FALSE)
  write.csv(do.call(rbind, taus), file.path(out, "tau.csv"), row.names = FALSE)
  write.csv(do.call(rbind, seconds), file.path(out, "seconds.csv"), row.names = FALSE)
}
