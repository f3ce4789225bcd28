# Regenerates the extra R reference files in analysis/testdata (the three
# datasets in testdata/anova/{toothgrowth,warpbreaks,unbalanced_abc}.* come
# from the project's shared reference set and are not touched here).
#
#   cd analysis/testdata && Rscript gen/reference.R
#
# Needs R with the car and pwr packages (Debian: r-base-core r-cran-car r-cran-pwr).
suppressMessages({library(car); library(pwr)})
options(contrasts = c("contr.sum", "contr.poly"))

fmt <- function(x) if (is.na(x)) "null" else sprintf("%.17g", x)

rows_json <- function(tab, terms) {
  out <- character(0)
  for (i in seq_len(nrow(tab))) {
    nm <- trimws(terms[i])
    df <- tab[i, grep("^Df$", colnames(tab))]
    ss <- tab[i, grep("Sum Sq", colnames(tab))]
    f  <- tab[i, grep("F value", colnames(tab))]
    p  <- tab[i, grep("Pr\\(>F\\)", colnames(tab))]
    out <- c(out, sprintf('{"term":"%s","df":%s,"ss":%s,"f":%s,"p":%s}', nm, fmt(df), fmt(ss), fmt(f), fmt(p)))
  }
  paste0("[", paste(out, collapse = ",\n  "), "]")
}

write_ref <- function(d, name, response, factors, types = 1:3) {
  write.csv(d, paste0("anova/", name, ".csv"), row.names = FALSE, quote = FALSE)
  for (f in factors) d[[f]] <- factor(d[[f]], levels = unique(d[[f]]))
  fo <- as.formula(paste(response, "~", paste(factors, collapse = "*")))
  m <- lm(fo, data = d)
  parts <- c()
  if (1 %in% types) { a <- anova(m); parts <- c(parts, paste0('"type1":', rows_json(a, rownames(a)))) }
  if (2 %in% types) { a <- Anova(m, type = 2); parts <- c(parts, paste0('"type2":', rows_json(a, rownames(a)))) }
  if (3 %in% types) { a <- Anova(m, type = 3); parts <- c(parts, paste0('"type3":', rows_json(a, rownames(a)))) }
  js <- sprintf('{"dataset":"%s.csv","response":"%s","factors":[%s],\n%s}\n', name, response,
                paste0('"', factors, '"', collapse = ","), paste(parts, collapse = ",\n"))
  writeLines(js, paste0("anova/", name, ".expected.json"), sep = "")
}

set.seed(20240601)

# Four factors (2x3x2x2), every cell present, strongly unbalanced, with main
# effects and interactions; values near 1000 to exercise centring.
lv <- expand.grid(a = c("ctl", "t1"), b = c("x", "y", "z"), c = c("off", "on"), d = c("p", "q"),
                  stringsAsFactors = FALSE)
d4 <- do.call(rbind, lapply(seq_len(nrow(lv)), function(i) {
  n <- sample(2:9, 1)
  r <- lv[rep(i, n), ]
  r$y <- 1000 + 2 * (r$a == "t1") + 1.5 * (r$b == "y") - (r$b == "z") + 0.7 * (r$c == "on") +
    1.2 * (r$a == "t1") * (r$c == "on") + 0.8 * (r$b == "z") * (r$d == "q") + rnorm(n, sd = 1.3)
  r
}))
d4 <- d4[sample(nrow(d4)), c("y", "a", "b", "c", "d")]
write_ref(d4, "four_factor", "y", c("a", "b", "c", "d"))

# Two factors with 5 and 4 levels, random n in 1..6 (some cells with one row).
lv <- expand.grid(g = paste0("g", 1:5), h = paste0("h", 1:4), stringsAsFactors = FALSE)
d2 <- do.call(rbind, lapply(seq_len(nrow(lv)), function(i) {
  n <- sample(1:6, 1)
  r <- lv[rep(i, n), ]
  r$score <- round(rnorm(n, mean = 10 + as.integer(substr(r$g, 2, 2)) * (1 + 0.2 * as.integer(substr(r$h, 2, 2))), sd = 2), 3)
  r
}))
d2 <- d2[sample(nrow(d2)), c("g", "h", "score")]
write_ref(d2, "five_by_four", "score", c("g", "h"))

# One factor, three levels.
d1 <- data.frame(v = rep(c("A", "B", "C"), times = c(7, 4, 9)))
d1$m <- round(rnorm(nrow(d1), mean = c(A = 5, B = 6, C = 5.5)[d1$v]), 4)
write_ref(d1, "one_factor", "m", c("v"))

# 2x3 with the cell (t1, z) empty: R's anova() (Type I) reports a:b with 1 df.
# car refuses Types II/III on aliased models, so only Type I is written.
de <- d4[d4$c == "off" & d4$d == "p", c("y", "a", "b")]
de <- rbind(de, d4[d4$c == "on" & d4$d == "q", c("y", "a", "b")])
de <- de[!(de$a == "t1" & de$b == "z"), ]
write_ref(de, "empty_cell", "y", c("a", "b"), types = 1)

# Noncentral F: CDF values from R's pf (AS 226 / R84, accurate to ~1e-9).
grid <- expand.grid(x = c(0.2, 1, 2.5, 4, 8), d1 = c(1, 3, 7), d2 = c(5, 30, 400), ncp = c(0, 0.5, 4, 20, 150))
grid$cdf <- mapply(function(x, a, b, n) pf(x, a, b, ncp = n), grid$x, grid$d1, grid$d2, grid$ncp)
write.csv(grid, "power/noncentral_f.csv", row.names = FALSE, quote = FALSE)

# pwr sample sizes.
pw <- rbind(
  data.frame(fn = "f2", a = 1, b = 0.01, alpha = 0.05, power = 0.8, result = pwr.f2.test(u = 1, f2 = 0.01, sig.level = 0.05, power = 0.8)$v),
  data.frame(fn = "f2", a = 5, b = 0.15, alpha = 0.01, power = 0.9, result = pwr.f2.test(u = 5, f2 = 0.15, sig.level = 0.01, power = 0.9)$v),
  data.frame(fn = "f2", a = 3, b = 0.02, alpha = 0.05, power = 0.5, result = pwr.f2.test(u = 3, f2 = 0.02, sig.level = 0.05, power = 0.5)$v),
  data.frame(fn = "anova", a = 4, b = 0.1, alpha = 0.05, power = 0.8, result = pwr.anova.test(k = 4, f = 0.1, sig.level = 0.05, power = 0.8)$n),
  data.frame(fn = "anova", a = 2, b = 0.25, alpha = 0.05, power = 0.9, result = pwr.anova.test(k = 2, f = 0.25, sig.level = 0.05, power = 0.9)$n),
  data.frame(fn = "anova", a = 6, b = 0.4, alpha = 0.01, power = 0.95, result = pwr.anova.test(k = 6, f = 0.4, sig.level = 0.01, power = 0.95)$n),
  data.frame(fn = "t", a = 0.2, b = NA, alpha = 0.05, power = 0.8, result = pwr.t.test(d = 0.2, sig.level = 0.05, power = 0.8)$n),
  data.frame(fn = "t", a = 0.5, b = NA, alpha = 0.01, power = 0.9, result = pwr.t.test(d = 0.5, sig.level = 0.01, power = 0.9)$n),
  data.frame(fn = "t", a = 1.5, b = NA, alpha = 0.05, power = 0.8, result = pwr.t.test(d = 1.5, sig.level = 0.05, power = 0.8)$n)
)
write.csv(pw, "power/pwr.csv", row.names = FALSE, quote = FALSE, na = "")

# Estimates from R's lm with contr.sum (independent of the cell-mean
# formulas in estimates.go): marginal mean of level l = (Intercept) + α_l,
# with α_k = −Σ_{j<k} α_j; interaction contrasts of two-level factors =
# (−2)^r × the term's coefficient; intervals from vcov and qt; the
# relative interval by Fieller's theorem (its SE by the delta method).
write_estimates <- function(name, response, factors, level) {
  d <- read.csv(paste0("anova/", name, ".csv"), stringsAsFactors = FALSE)
  for (f in factors) d[[f]] <- factor(d[[f]], levels = unique(d[[f]]))
  m <- lm(as.formula(paste(response, "~", paste(factors, collapse = "*"))), data = d)
  b <- coef(m); V <- vcov(m); p <- length(b); df <- df.residual(m)
  q <- qt((1 + level) / 2, df)
  e <- function(nm) { v <- numeric(p); v[match(nm, names(b))] <- 1; v }
  mm_vec <- function(f, l) {
    k <- nlevels(d[[f]])
    v <- e("(Intercept)")
    if (l < k) v <- v + e(paste0(f, l)) else for (j in 1:(k - 1)) v <- v - e(paste0(f, j))
    v
  }
  est <- function(v) c(sum(v * b), sqrt(drop(t(v) %*% V %*% v)))
  eff <- c(); mar <- c(); int <- c()
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
      g <- cl / m0 - ml / m0^2 * c0     # gradient of ml/m0 − 1
      rs <- sqrt(drop(t(g) %*% V %*% g))
      rel <- ml / m0 - 1
      # Fieller: (ml − ρ·m0)² ≤ q²·Var(ml − ρ·m0), with the covariance from vcov.
      v11 <- drop(t(cl) %*% V %*% cl); v00 <- drop(t(c0) %*% V %*% c0); v01 <- drop(t(cl) %*% V %*% c0)
      A <- m0^2 - q^2 * v00; B <- -2 * (ml * m0 - q^2 * v01); C <- ml^2 - q^2 * v11
      roots <- sort((-B + c(-1, 1) * sqrt(B^2 - 4 * A * C)) / (2 * A))
      eff <- c(eff, sprintf('{"factor":"%s","control":"%s","variant":"%s","diff":%s,"se":%s,"lo":%s,"hi":%s,"p":%s,"rel":%s,"rel_se":%s,"rel_lo":%s,"rel_hi":%s}',
        f, lv[1], lv[l], fmt(r[1]), fmt(r[2]), fmt(r[1] - q * r[2]), fmt(r[1] + q * r[2]),
        fmt(2 * pt(-abs(r[1] / r[2]), df)), fmt(rel), fmt(rs), fmt(roots[1] - 1), fmt(roots[2] - 1)))
    }
  }
  two <- factors[sapply(factors, function(f) nlevels(d[[f]]) == 2)]
  if (length(two) >= 2) for (r in 2:length(two)) for (cmb in combn(two, r, simplify = FALSE)) {
    nm <- paste0(cmb, "1", collapse = ":")
    v <- (-2)^r * e(nm)
    x <- est(v)
    # R orders the term's factors as in the formula.
    term <- paste(factors[factors %in% cmb], collapse = ":")
    int <- c(int, sprintf('{"term":"%s","estimate":%s,"se":%s,"lo":%s,"hi":%s}', term, fmt(x[1]), fmt(x[2]), fmt(x[1] - q * x[2]), fmt(x[1] + q * x[2])))
  }
  js <- sprintf('{"dataset":"%s.csv","response":"%s","factors":[%s],"level":%s,"df":%d,"mse":%s,\n"effects":[%s],\n"marginal":[%s],\n"interactions":[%s]}\n',
    name, response, paste0('"', factors, '"', collapse = ","), fmt(level), df, fmt(summary(m)$sigma^2),
    paste(eff, collapse = ",\n  "), paste(mar, collapse = ",\n  "), paste(int, collapse = ",\n  "))
  writeLines(js, paste0("estimates/", name, ".json"), sep = "")
}
dir.create("estimates", showWarnings = FALSE)
write_estimates("unbalanced_abc", "y", c("a", "b", "c"), 0.95)
write_estimates("four_factor", "y", c("a", "b", "c", "d"), 0.90)
write_estimates("toothgrowth", "len", c("supp", "dose"), 0.95)
