"""Where a trained ranker's head errors sit, over every eligible pair of every user: the logit error
split into per-item and per-user parts, against exposure and integrity, in each user's competitive
region (top 60 by true value), each head's share of the value error, and whether the per-item
error is shrinkage (a slope against the item's true effect) or noise.

    FEED_SIM_DIR=/tmp/exp/feed python3 errors.py /tmp/exp/home_TAG feed
"""
import sys, math, collections
from run import *
home, name = sys.argv[1], sys.argv[2]
H = HEADS
integ = {r[0]: float(r[3]) for r in rows(f"{D}/items.csv")}
users = [f"u{i}" for i in range(200) if f"u{i}" in seen]
pred = predictions(home, name)
lg = lambda p: math.log(p/(1-p))
# exposure per pair and per item
expo = collections.Counter((r[1], r[2]) for r in imps)
iexpo = collections.Counter(r[2] for r in imps)
ipos = collections.defaultdict(list)
for r in imps: ipos[r[2]].append(int(r[4]))
def corr(xs, ys):
    mx, my = sum(xs)/len(xs), sum(ys)/len(ys)
    return sum((x-mx)*(y-my) for x, y in zip(xs, ys)) / math.sqrt(sum((x-mx)**2 for x in xs) * sum((y-my)**2 for y in ys))
for h in range(4):
    keys = list(pred)
    err = [lg(max(min(pred[k][h],1-1e-6),1e-6)) - lg(truth[k][h]) for k in keys]
    me = sum(err)/len(err)
    # per item mean error
    per_item = collections.defaultdict(list)
    per_pair_exp = collections.defaultdict(list)
    for k, e in zip(keys, err):
        per_item[k[1]].append(e)
        per_pair_exp[min(expo[k], 20)//5].append(e)
    items_ = list(per_item)
    im = [sum(per_item[i])/len(per_item[i]) for i in items_]
    var_total = sum((e-me)**2 for e in err)/len(err)
    var_item = sum((m-me)**2 * len(per_item[i]) for m, i in zip(im, items_))/len(err)
    # per user
    per_user = collections.defaultdict(list)
    for k, e in zip(keys, err): per_user[k[0]].append(e)
    var_user = sum((sum(v)/len(v)-me)**2*len(v) for v in per_user.values())/len(err)
    print(f"{H[h]}: logit error mean {me:+.3f} sd {math.sqrt(var_total):.3f}; item share of var {var_item/var_total:.2f}, user share {var_user/var_total:.2f}")
    print("   item mean err vs integrity corr", f"{corr(im, [integ[i] for i in items_]):+.3f}", "vs log exposure", f"{corr(im, [math.log(1+iexpo[i]) for i in items_]):+.3f}", "vs mean pos", f"{corr(im, [sum(ipos[i])/max(1,len(ipos[i])) for i in items_]):+.3f}")
    print("   err by pair exposure bucket (0-4,5-9,10-14,15-19,20+):", " ".join(f"{b*5}:{sum(v)/len(v):+.3f}/{math.sqrt(sum((x-sum(v)/len(v))**2 for x in v)/len(v)):.3f}(n{len(v)})" for b, v in sorted(per_pair_exp.items())))
print("--- competitive region: each user's top 60 eligible by true value")
comp = []
for u in users:
    el = [k for k in pred if k[0] == u]
    el.sort(key=lambda k: -sum(p*w for p, w in zip(truth[k], W)))
    comp += el[:60]
for h in range(4):
    err = {k: lg(max(min(pred[k][h],1-1e-6),1e-6)) - lg(truth[k][h]) for k in comp}
    me = sum(err.values())/len(err)
    per_item = collections.defaultdict(list); per_user = collections.defaultdict(list)
    for k, e in err.items(): per_item[k[1]].append(e); per_user[k[0]].append(e)
    vt = sum((e-me)**2 for e in err.values())/len(err)
    vi = sum((sum(v)/len(v)-me)**2*len(v) for v in per_item.values())/len(err)
    vu = sum((sum(v)/len(v)-me)**2*len(v) for v in per_user.values())/len(err)
    # within-user: error minus user mean
    wu = [e - sum(per_user[k[0]])/len(per_user[k[0]]) for k, e in err.items()]
    print(f"{H[h]}: mean {me:+.3f} sd {math.sqrt(vt):.3f} item-level sd {math.sqrt(vi):.3f} user-level sd {math.sqrt(vu):.3f} within-user sd {math.sqrt(sum(x*x for x in wu)/len(wu)):.3f}")
# value error within user, in value units
ve = []
for u in users:
    ks = [k for k in comp if k[0] == u]
    d = [sum((pred[k][h]-truth[k][h])*W[h] for h in range(4)) for k in ks]
    m = sum(d)/len(d); ve += [x-m for x in d]
tv = []
for u in users:
    ks = [k for k in comp if k[0] == u]
    d = [sum(truth[k][h]*W[h] for h in range(4)) for k in ks]; m = sum(d)/len(d); tv += [x-m for x in d]
print("value: within-user error sd", f"{math.sqrt(sum(x*x for x in ve)/len(ve)):.3f}", "true within-user sd", f"{math.sqrt(sum(x*x for x in tv)/len(tv)):.3f}")
for h in range(4):
    ve = []
    for u in users:
        ks = [k for k in comp if k[0] == u]
        d = [(pred[k][h]-truth[k][h])*W[h] for k in ks]; m = sum(d)/len(d); ve += [x-m for x in d]
    print(f"  {H[h]} contribution to value error sd {math.sqrt(sum(x*x for x in ve)/len(ve)):.3f}")
print("--- shrinkage: slope of each item's mean error on its mean true logit (all eligible pairs, user-centred)")
for h in range(4):
    per_user_t = collections.defaultdict(list)
    for k in pred: per_user_t[k[0]].append(lg(truth[k][h]))
    um = {u: sum(v)/len(v) for u, v in per_user_t.items()}
    per_user_e = collections.defaultdict(list)
    for k in pred: per_user_e[k[0]].append(lg(max(min(pred[k][h],1-1e-6),1e-6)) - lg(truth[k][h]))
    ue = {u: sum(v)/len(v) for u, v in per_user_e.items()}
    it = collections.defaultdict(list); ie = collections.defaultdict(list)
    for k in pred:
        it[k[1]].append(lg(truth[k][h]) - um[k[0]])
        ie[k[1]].append(lg(max(min(pred[k][h],1-1e-6),1e-6)) - lg(truth[k][h]) - ue[k[0]])
    xs = [sum(it[i])/len(it[i]) for i in it]; ys = [sum(ie[i])/len(ie[i]) for i in it]
    mx, my = sum(xs)/len(xs), sum(ys)/len(ys)
    b = sum((x-mx)*(y-my) for x, y in zip(xs, ys))/sum((x-mx)**2 for x in xs)
    res = [y-my-b*(x-mx) for x, y in zip(xs, ys)]
    print(f"{H[h]}: item true sd {math.sqrt(sum((x-mx)**2 for x in xs)/len(xs)):.3f} error sd {math.sqrt(sum((y-my)**2 for y in ys)/len(ys)):.3f} slope {b:+.3f} residual sd {math.sqrt(sum(r*r for r in res)/len(res)):.3f}")
print("--- items by like error")
h = 0
per_user_e = collections.defaultdict(list)
for k in pred: per_user_e[k[0]].append(lg(max(min(pred[k][h],1-1e-6),1e-6)) - lg(truth[k][h]))
ue = {u: sum(v)/len(v) for u, v in per_user_e.items()}
ie = collections.defaultdict(list)
for k in pred: ie[k[1]].append(lg(max(min(pred[k][h],1-1e-6),1e-6)) - lg(truth[k][h]) - ue[k[0]])
likes = collections.Counter(r[2] for r in imps if r[5] == "1")
srt = sorted(ie, key=lambda i: sum(ie[i])/len(ie[i]))
for i in srt[:8] + srt[-8:]:
    print(i, f"err {sum(ie[i])/len(ie[i]):+.3f} imps {iexpo[i]} likes {likes[i]} meanpos {sum(ipos[i])/max(1,len(ipos[i])):.2f} integ {integ[i]}")
