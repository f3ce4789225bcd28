# Unit-level references for issue 10: per-unit aggregates and the ratio.
#
#   cd analysis/testdata && Rscript gen/unitlevel.R      (or: make reference)
#
# Needs R with car and sandwich (Debian: r-base-core r-cran-car r-cran-sandwich).
#
# For each design it simulates request-level data in which units (users)
# make several requests (1 + geometric, mean 4) and carry a unit-level
# effect, writes the requests to unitlevel/<name>.requests.csv (columns
# unit, the factors, y; y is an integer so the CSV is exact) and writes R's
# results to unitlevel/<name>.expected.json:
#
#   - for each aggregate mean/sum/any/count: one row per unit (its cell's
#     levels and its aggregated value), then anova(lm) (Type I),
#     car::Anova type 2 and 3 (contr.sum), and the estimates of lm with
#     contr.sum (as gen/reference.R: marginal means from the coefficients,
#     effects, relative effects with Fieller's interval, interaction
#     contrasts of two-level factors, t intervals on the residual df);
#
#   - for the ratio (Σ y / Σ requests per cell): the request-level
#     saturated lm(y ~ A*B*…), whose cell means are the cells' ratios, with
#     the cluster-robust covariance sandwich::vcovCL(cluster = ~unit,
#     type = "HC0", cadjust = FALSE) scaled cell by cell by K/(K − 1)
#     (K = units in the cell); Wald chi-square tests of the Type III
#     (contr.sum) hypotheses with car::linearHypothesis(test = "Chisq");
#     and the same estimates with normal (z) intervals.
#
# Why K/(K − 1): in a saturated model each cell mean is the cell's
# request-level mean R_c = Σ_u s_u / Σ_u n_u (s_u the unit's sum of y, n_u
# its requests), its residuals are y − R_c, and units are nested in cells,
# so the HC0 cluster-robust variance of R_c is
#
#   Σ_u (s_u − R_c·n_u)² / N_c²,   N_c = Σ_u n_u,
#
# and cells are uncorrelated. Deng, Knoblich & Lu's delta method with
# (K − 1) sample moments is
#
#   (σ²_s − 2·R·σ_sn + R²·σ²_n) / (K·n̄²) = Σ_u (s_u − R·n_u)² / (K − 1) / (K·n̄²)
#                                         = Σ_u (s_u − R·n_u)² / N_c² · K/(K − 1),
#
# since Σ_u (s_u − R·n_u) = 0 and K·n̄ = N_c. The script checks both
# identities (diagonal cell covariance; the scaled variance equals the
# direct formula) before writing.
suppressMessages({library(car); library(sandwich)})
options(contrasts = c("contr.sum", "contr.poly"))

source("gen/lib/estimates.R")

# simulate draws n_units units, each in a cell drawn with weights w (cells
# in table order: the last factor varies fastest), with 1 + Geometric(1/4)
# requests (mean 4) and a unit effect correlated with its request count.
# A request converts with probability plogis(lin + b_u) and then has an
# integer value around 2000·exp(0.3·lin + 0.5·b_u); y is 0 otherwise.
simulate <- function(levels, n_units, w, lin) {
  cells <- rev(expand.grid(rev(levels), stringsAsFactors = FALSE))
  cell <- sample(nrow(cells), n_units, replace = TRUE, prob = w)
  n <- 1 + rgeom(n_units, 1 / 4)
  b <- rnorm(n_units, sd = 0.8) + 0.15 * (n - 4)
  unit <- rep(seq_len(n_units), n)
  eta <- apply(cells, 1, function(r) lin(as.list(r)))[cell[unit]] + b[unit]
  conv <- rbinom(length(unit), 1, plogis(eta))
  y <- conv * round(2000 * exp(0.3 * (eta - b[unit]) + 0.5 * b[unit] + rnorm(length(unit), sd = 0.6)))
  req <- cbind(data.frame(unit = sprintf("u%04d", unit)), cells[cell[unit], , drop = FALSE], data.frame(y = y))
  rownames(req) <- NULL
  req[sample(nrow(req)), ]
}

# unit_rows aggregates the requests to one row per unit.
unit_rows <- function(req, factors) {
  s <- split(req, req$unit)
  do.call(rbind, lapply(s, function(u) {
    r <- u[1, factors, drop = FALSE]
    r$mean <- mean(u$y); r$sum <- sum(u$y); r$any <- as.numeric(any(u$y != 0)); r$count <- nrow(u)
    r
  }))
}

aggregate_json <- function(units, levels, agg, level) {
  factors <- names(levels)
  m <- lm(as.formula(paste(agg, "~", paste(factors, collapse = "*"))), data = units)
  sprintf('{"aggregate":"%s",\n"type1":%s,\n"type2":%s,\n"type3":%s,\n"estimates":%s}', agg,
    rows_json(anova(m)), rows_json(Anova(m, type = 2)), rows_json(Anova(m, type = 3)),
    estimates_json(coef(m), vcov(m), df.residual(m), units, factors, level, summary(m)$sigma^2, cell_rows(levels, units)))
}

# ratio_json: the request-level saturated model with the cluster-robust
# covariance scaled per cell by K/(K − 1) (see the header), checked against
# Deng et al.'s formula computed directly from the units' (s_u, n_u).
ratio_json <- function(req, units, levels, level) {
  factors <- names(levels)
  m <- lm(as.formula(paste("y ~", paste(factors, collapse = "*"))), data = req)
  V0 <- vcovCL(m, cluster = ~unit, type = "HC0", cadjust = FALSE)
  cr <- cell_rows(levels, units)
  X <- cr$X; K <- cr$n; key <- cr$key; cells <- cr$cells
  Vmu <- X %*% V0 %*% t(X)
  off <- Vmu - diag(diag(Vmu))
  stopifnot(max(abs(off)) < 1e-9 * max(diag(Vmu)))
  Vmu <- diag(diag(Vmu) * K / (K - 1))
  deng <- sapply(split(units, factor(key(units), levels = key(cells))), function(u) {
    R <- sum(u$sum) / sum(u$count)
    (var(u$sum) - 2 * R * cov(u$sum, u$count) + R^2 * var(u$count)) / (nrow(u) * mean(u$count)^2)
  })
  stopifnot(isTRUE(all.equal(unname(diag(Vmu)), unname(deng), tolerance = 1e-10)))
  Xi <- solve(X)
  V <- Xi %*% Vmu %*% t(Xi)
  dimnames(V) <- dimnames(V0)
  b <- coef(m)
  asg <- attr(model.matrix(m), "assign")
  tl <- c("(Intercept)", attr(terms(m), "term.labels"))
  rows <- character(0)
  for (j in seq_along(tl)) {
    H <- diag(length(b))[asg == j - 1, , drop = FALSE]
    h <- linearHypothesis(m, H, vcov. = V, test = "Chisq")
    rows <- c(rows, sprintf('{"term":"%s","df":%s,"chisq":%s,"p":%s}', tl[j], fmt(h$Df[2]), fmt(h$Chisq[2]), fmt(h[["Pr(>Chisq)"]][2])))
  }
  lvd <- req
  for (f in factors) lvd[[f]] <- factor(lvd[[f]], levels = levels[[f]])
  sprintf('{"type3":%s,\n"estimates":%s}', jarr(rows), estimates_json(b, V, Inf, lvd, factors, level, 0, cr))
}

write_design <- function(name, levels, n_units, w, lin, level) {
  factors <- names(levels)
  req <- simulate(levels, n_units, w, lin)
  dir.create("unitlevel", showWarnings = FALSE)
  write.csv(req, paste0("unitlevel/", name, ".requests.csv"), row.names = FALSE, quote = FALSE)
  for (f in factors) req[[f]] <- factor(req[[f]], levels = levels[[f]])
  units <- unit_rows(req, factors)
  aggs <- sapply(c("mean", "sum", "any", "count"), function(a) aggregate_json(units, levels, a, level))
  js <- sprintf('{"requests":"%s.requests.csv","factors":[%s],"levels":[%s],"units":%d,"rows":%d,\n"aggregates":[%s],\n"ratio":%s}\n',
    name, paste(q(factors), collapse = ","),
    paste(sapply(levels, function(l) paste0("[", paste(q(l), collapse = ","), "]")), collapse = ","),
    nrow(units), nrow(req), paste(aggs, collapse = ",\n"), ratio_json(req, units, levels, level))
  writeLines(js, paste0("unitlevel/", name, ".expected.json"), sep = "")
}

set.seed(20260310)

# Three factors A(2) × B(3) × C(2), unbalanced, with two interactions.
write_design("abc", list(A = c("a0", "a1"), B = c("b0", "b1", "b2"), C = c("c0", "c1")), 600,
  c(0.12, 0.08, 0.10, 0.06, 0.09, 0.05, 0.11, 0.07, 0.09, 0.08, 0.10, 0.05),
  function(r) -0.8 + 0.5 * (r$A == "a1") + c(b0 = 0, b1 = 0.3, b2 = -0.4)[[r$B]] + 0.2 * (r$C == "c1") +
    0.4 * (r$A == "a1") * (r$B == "b2") - 0.3 * (r$A == "a1") * (r$C == "c1"), 0.95)

# A 2 × 2 design, unbalanced, with an interaction, at the 90% level.
write_design("ab", list(A = c("ctl", "t1"), B = c("ctl", "t1")), 400, c(0.3, 0.2, 0.25, 0.25),
  function(r) -0.5 + 0.6 * (r$A == "t1") + 0.2 * (r$B == "t1") - 0.5 * (r$A == "t1") * (r$B == "t1"), 0.90)
