"""High-precision noncentral F CDF values (mpmath, 40 digits) for the grid
of power/noncentral_f.csv (whose cdf column is R's pf, good to ~1e-9).

    cd analysis/testdata && python3 gen/noncentral_f.py
"""
import csv
import mpmath as mp

mp.mp.dps = 40


def ncf_cdf(x, d1, d2, ncp):
    x, d1, d2, ncp = map(mp.mpf, (x, d1, d2, ncp))
    y = d1 * x / (d1 * x + d2)
    mu = ncp / 2
    total = mp.mpf(0)
    j = 0
    mass = mp.mpf(0)
    while True:
        w = mp.exp(-mu) * mu**j / mp.factorial(j)
        total += w * mp.betainc(d1 / 2 + j, d2 / 2, 0, y, regularized=True)
        mass += w
        j += 1
        if j > mu and 1 - mass < mp.mpf(10) ** -35:
            break
    return total


with open("power/noncentral_f.csv") as f:
    rows = list(csv.DictReader(f))
with open("power/noncentral_f_mpmath.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["x", "d1", "d2", "ncp", "cdf", "sf"])
    for r in rows:
        c = ncf_cdf(r["x"], r["d1"], r["d2"], r["ncp"])
        w.writerow([r["x"], r["d1"], r["d2"], r["ncp"], mp.nstr(c, 20), mp.nstr(1 - c, 20)])
