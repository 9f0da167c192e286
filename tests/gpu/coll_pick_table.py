#!/usr/bin/env python3
"""coll_pick_table.py SWEEP.log - the selection table (coll_gpu.c choose()) from the RESULT
lines of `test_gpu_coll_bench N --sweep --factor 2` (how the 3+-rank table was chosen).
Order by size: ll -> ll2 (all-reduce) -> zc -> ce -> cep (all-reduce). Minimise first the number
of sizes where the choice is slower than NCCL, then the summed log slowdown against the best
algorithm at each size. Prints shell assignments for the all-reduce and all-gather runs."""
import math
import sys
rows = {"all_reduce": [], "all_gather": []}
for line in open(sys.argv[1]):
    f = line.split()
    if not f or f[0] != "RESULT" or "ll_us" not in f:
        continue
    kv = {f[i]: float(f[i + 1]) for i in range(4, len(f) - 1, 2)}
    t = {a: kv.get(a + "_us", 0.0) or math.inf for a in ("ll", "ll2", "zc", "ce", "cep")}
    rows[f[1]].append((int(f[3]), t, kv["nccl_us"]))
INF = 1 << 62
def choose(b, ll_max, ll2_max, ce_min, cep_min, ar):
    if b <= ll_max: return "ll"
    if ar and b <= ll2_max: return "ll2"
    if ar and b >= cep_min: return "cep"
    return "ce" if b >= ce_min else "zc"
def score(rs, th, ar):
    slow, cost = 0, 0.0
    for b, t, nccl in rs:
        c = t[choose(b, *th, ar)]
        best = min(t.values())
        if c == math.inf: return (INF, INF)
        slow += c > nccl
        cost += math.log(c / best)
    return (slow, cost)
out = []
for coll, rs in rows.items():
    ar = coll == "all_reduce"
    sizes = sorted(b for b, _, _ in rs)
    cand = [s for s in sizes] + [INF]
    best = None
    for ll_max in [s for s in sizes if s <= (16 << 20)]:
        for ll2_max in ([s for s in sizes if ll_max <= s <= (16 << 20)] if ar else [0]):
            for ce_min in [s for s in cand if s > max(ll_max, ll2_max)]:
                for cep_min in ([s for s in cand if s >= ce_min] if ar else [INF]):
                    th = (ll_max, ll2_max, ce_min, cep_min)
                    sc = score(rs, th, ar)
                    if best is None or sc < best[0]:
                        best = (sc, th)
    (slow, cost), th = best
    for b, t, nccl in rs:
        c = choose(b, *th, ar)
        print(f"# {coll} {b:>11} -> {c:4} {t[c]:9.2f} us (best {min(t, key=t.get)} {min(t.values()):9.2f}, nccl {nccl:9.2f})", file=sys.stderr)
    print(f"# {coll}: slower than NCCL at {slow} sizes, log cost {cost:.3f}", file=sys.stderr)
    p = "AR" if ar else "AG"
    env = f"KCCL_COLL_LL_MAX={th[0]} KCCL_COLL_CE_MIN={min(th[2], INF)}"
    if ar:
        env += f" KCCL_COLL_LL2_MAX={th[1]} KCCL_COLL_CEP_MIN={th[3] if th[3] < INF else -1}"
    env = env.replace(f"CE_MIN={INF}", "CE_MIN=" + str(1 << 40))
    out.append(f'{p}_ENV="{env}"')
print("\n".join(out))
