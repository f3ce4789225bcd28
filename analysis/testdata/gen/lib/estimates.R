# Shared by the reference scripts in gen/ (run from analysis/testdata):
# JSON helpers, ANOVA tables as JSON rows, and the estimates of a
# contr.sum linear model from its coefficients and covariance.

fmt <- function(x) if (is.na(x)) "null" else sprintf("%.17g", x)
q <- function(s) paste0('"', s, '"')
jarr <- function(x) paste0("[", paste(x, collapse = ",\n  "), "]")

# rows_json writes an ANOVA table (anova or car::Anova) as JSON rows.
rows_json <- function(tab) {
  out <- character(0)
  for (i in seq_len(nrow(tab))) {
    col <- function(re) { j <- grep(re, colnames(tab)); if (length(j)) tab[i, j] else NA }
    out <- c(out, sprintf('{"term":"%s","df":%s,"ss":%s,"f":%s,"p":%s}', trimws(rownames(tab)[i]),
      fmt(col("^Df$")), fmt(col("Sum Sq")), fmt(col("F value")), fmt(col("Pr\\(>F\\)"))))
  }
  jarr(out)
}

# cell_rows returns the cells in table order (the last factor varies
# fastest): their levels, their rows of the contr.sum model matrix and
# their numbers of rows in units (one row per unit in unitlevel.R).
cell_rows <- function(levels, units) {
  factors <- names(levels)
  cells <- rev(expand.grid(rev(levels), stringsAsFactors = FALSE))
  for (f in factors) cells[[f]] <- factor(cells[[f]], levels = levels[[f]])
  X <- model.matrix(as.formula(paste("~", paste(factors, collapse = "*"))), data = cells)
  key <- function(d) do.call(paste, c(lapply(factors, function(f) as.character(d[[f]])), sep = "\r"))
  list(X = X, levels = as.matrix(cells[factors]), n = as.vector(table(factor(key(units), levels = key(cells)))),
       key = key, cells = cells)
}

# estimates_json writes the estimates of a contr.sum linear model from its
# coefficients b and covariance V (d: the data, for the factors' levels;
# df: the residual df, Inf for normal (z) intervals; mse: the residual
# variance, written as is; cellrows: optional cells from cell_rows;
# head: JSON fields written first, each ending in ",").
# Marginal mean of level l = (Intercept) + α_l (α_k = −Σ α_j); contrast of
# an interaction of r two-level factors = (−2)^r × its coefficient; the
# relative effect by Fieller's theorem, its SE by the delta method.
estimates_json <- function(b, V, df, d, factors, level, mse, cellrows = NULL, head = "") {
  p <- length(b)
  crit <- if (is.infinite(df)) qnorm((1 + level) / 2) else qt((1 + level) / 2, df)
  pval <- function(z) if (is.infinite(df)) 2 * pnorm(-abs(z)) else 2 * pt(-abs(z), df)
  e <- function(nm) { v <- numeric(p); v[match(nm, names(b))] <- 1; v }
  mm_vec <- function(f, l) {
    k <- nlevels(d[[f]])
    v <- e("(Intercept)")
    if (l < k) v + e(paste0(f, l)) else v - Reduce(`+`, lapply(1:(k - 1), function(j) e(paste0(f, j))))
  }
  est <- function(v) c(sum(v * b), sqrt(drop(t(v) %*% V %*% v)))
  eff <- c(); mar <- c(); int <- c(); cel <- c()
  for (f in factors) {
    lv <- levels(d[[f]])
    for (l in seq_along(lv)) {
      r <- est(mm_vec(f, l))
      mar <- c(mar, sprintf('{"factor":"%s","level":"%s","mean":%s,"se":%s}', f, lv[l], fmt(r[1]), fmt(r[2])))
    }
    c0 <- mm_vec(f, 1); m0 <- sum(c0 * b)
    for (l in seq_along(lv)[-1]) {
      cl <- mm_vec(f, l); ml <- sum(cl * b)
      r <- est(cl - c0)
      g <- cl / m0 - ml / m0^2 * c0
      rs <- sqrt(drop(t(g) %*% V %*% g))
      v11 <- drop(t(cl) %*% V %*% cl); v00 <- drop(t(c0) %*% V %*% c0); v01 <- drop(t(cl) %*% V %*% c0)
      A <- m0^2 - crit^2 * v00; B <- -2 * (ml * m0 - crit^2 * v01); C <- ml^2 - crit^2 * v11
      roots <- sort((-B + c(-1, 1) * sqrt(B^2 - 4 * A * C)) / (2 * A))
      eff <- c(eff, sprintf('{"factor":"%s","control":"%s","variant":"%s","diff":%s,"se":%s,"lo":%s,"hi":%s,"p":%s,"rel":%s,"rel_se":%s,"rel_lo":%s,"rel_hi":%s}',
        f, lv[1], lv[l], fmt(r[1]), fmt(r[2]), fmt(r[1] - crit * r[2]), fmt(r[1] + crit * r[2]),
        fmt(pval(r[1] / r[2])), fmt(ml / m0 - 1), fmt(rs), fmt(roots[1] - 1), fmt(roots[2] - 1)))
    }
  }
  two <- factors[sapply(factors, function(f) nlevels(d[[f]]) == 2)]
  if (length(two) >= 2) for (r in 2:length(two)) for (cmb in combn(two, r, simplify = FALSE)) {
    x <- est((-2)^r * e(paste0(cmb, "1", collapse = ":")))
    term <- paste(factors[factors %in% cmb], collapse = ":")
    int <- c(int, sprintf('{"term":"%s","estimate":%s,"se":%s,"lo":%s,"hi":%s,"p":%s}', term,
      fmt(x[1]), fmt(x[2]), fmt(x[1] - crit * x[2]), fmt(x[1] + crit * x[2]), fmt(pval(x[1] / x[2]))))
  }
  if (!is.null(cellrows)) for (i in seq_len(nrow(cellrows$X))) {
    x <- est(cellrows$X[i, ])
    cel <- c(cel, sprintf('{"levels":[%s],"n":%d,"mean":%s,"se":%s,"lo":%s,"hi":%s}',
      paste(q(cellrows$levels[i, ]), collapse = ","), cellrows$n[i], fmt(x[1]), fmt(x[2]),
      fmt(x[1] - crit * x[2]), fmt(x[1] + crit * x[2])))
  }
  sprintf('{%s"level":%s,"df":%s,"mse":%s,\n"effects":%s,\n"marginal":%s,\n"interactions":%s,\n"cells":%s}',
    head, fmt(level), if (is.infinite(df)) "0" else sprintf("%d", df), fmt(mse), jarr(eff), jarr(mar), jarr(int), jarr(cel))
}

