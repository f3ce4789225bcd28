# Per-cell sample size of a two-way interaction in a 2^k factorial, for
# plan.interactions (issue 11): the noncentrality is computed here from a
# cell-means pattern with the given difference of differences d (the
# interaction effects by double centring the a×b table of means, averaged
# over the other factors), and the per-cell n solved with R's own
# noncentral F (pf with ncp) and uniroot, independently of abmesh's series
# and of its mapping from an MDE to Cohen's f. (pwr.f2.test cannot be used
# as is: its λ = f²·(u + v + 1) counts a one-way design's N, while a term of
# a factorial with C cells has λ = f²·C·n.)
#
#   cd analysis/testdata && Rscript gen/interaction_power.R      (or: make reference)
lambda_per_n <- function(k, d, sd) {
  # Cells of a 2^k design; the interaction a:b is d where a = b = 1, 0 else.
  g <- expand.grid(rep(list(0:1), k))
  m <- d * (g[[1]] == 1 & g[[2]] == 1)
  ab <- tapply(m, list(g[[1]], g[[2]]), mean)
  e <- ab - outer(rowMeans(ab), rep(1, 2)) - outer(rep(1, 2), colMeans(ab)) + mean(ab)
  # Each a×b combination holds 2^(k−2) cells: the term's SS per unit of n.
  2^(k - 2) * sum(e^2) / sd^2
}

needed <- function(k, d, sd, alpha, power) {
  C <- 2^k
  lpn <- lambda_per_n(k, d, sd)
  pw <- function(n) {
    v <- C * (n - 1)
    1 - pf(qf(1 - alpha, 1, v), 1, v, ncp = lpn * n)
  }
  uniroot(function(n) pw(n) - power, c(1 + 1 / C, 1e7), tol = 1e-10)$root
}

grid <- data.frame(
  k     = c(2, 2, 3, 3, 4, 5),
  d     = c(6, 2, 1, 8, 0.5, 3),
  sd    = c(20, 1, 2, 20, 1, 10),
  alpha = c(0.05, 0.05, 0.05, 0.01, 0.05, 0.1),
  power = c(0.8, 0.9, 0.8, 0.8, 0.95, 0.8)
)
grid$cells <- 2^grid$k
grid$n <- mapply(needed, grid$k, grid$d, grid$sd, grid$alpha, grid$power)
write.csv(grid[, c("cells", "d", "sd", "alpha", "power", "n")], "power/interaction.csv", row.names = FALSE, quote = FALSE)
