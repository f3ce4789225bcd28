# Regenerates the extra R reference files in analysis/testdata (the three
# datasets in testdata/anova/{toothgrowth,warpbreaks,unbalanced_abc}.* come
# from the project's shared reference set and are not touched here).
#
#   cd analysis/testdata && Rscript gen/reference.R      (or: make reference)
#
# Needs R with the car and pwr packages (Debian: r-base-core r-cran-car r-cran-pwr).
suppressMessages({library(car); library(pwr)})
options(contrasts = c("contr.sum", "contr.poly"))

source("gen/lib/estimates.R")

write_ref <- function(d, name, response, factors, types = 1:3) {
  write.csv(d, paste0("anova/", name, ".csv"), row.names = FALSE, quote = FALSE)
  for (f in factors) d[[f]] <- factor(d[[f]], levels = unique(d[[f]]))
  fo <- as.formula(paste(response, "~", paste(factors, collapse = "*")))
  m <- lm(fo, data = d)
  parts <- c()
  if (1 %in% types) { a <- anova(m); parts <- c(parts, paste0('"type1":', rows_json(a))) }
  if (2 %in% types) { a <- Anova(m, type = 2); parts <- c(parts, paste0('"type2":', rows_json(a))) }
  if (3 %in% types) { a <- Anova(m, type = 3); parts <- c(parts, paste0('"type3":', rows_json(a))) }
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
# formulas in estimates.go), by estimates_json in gen/lib/estimates.R.
write_estimates <- function(name, response, factors, level) {
  d <- read.csv(paste0("anova/", name, ".csv"), stringsAsFactors = FALSE)
  for (f in factors) d[[f]] <- factor(d[[f]], levels = unique(d[[f]]))
  m <- lm(as.formula(paste(response, "~", paste(factors, collapse = "*"))), data = d)
  head <- sprintf('"dataset":"%s.csv","response":"%s","factors":[%s],', name, response, paste0('"', factors, '"', collapse = ","))
  cells <- cell_rows(lapply(setNames(factors, factors), function(f) levels(d[[f]])), d)
  js <- estimates_json(coef(m), vcov(m), df.residual(m), d, factors, level, summary(m)$sigma^2, cells, head)
  writeLines(paste0(js, "\n"), paste0("estimates/", name, ".json"), sep = "")
}
dir.create("estimates", showWarnings = FALSE)
write_estimates("unbalanced_abc", "y", c("a", "b", "c"), 0.95)
write_estimates("four_factor", "y", c("a", "b", "c", "d"), 0.90)
write_estimates("toothgrowth", "len", c("supp", "dose"), 0.95)
