import sys, subprocess, os, math
from run import *
home, name = sys.argv[1], sys.argv[2]
env = dict(os.environ, FEED_HOME=home)
H = HEADS
users = [f"u{i}" for i in range(200) if f"u{i}" in seen]
pred = predictions(home, name)
def share(sub):
    orc = rnd = got = 0
    for u in users:
        el = [i for i in items if i not in seen[u]]
        tv = {i: sum(p*w for p, w in zip(truth[(u, i)], W)) for i in el}
        srt = sorted(tv.values(), reverse=True)
        orc += sum(srt[:20]); rnd += 20 * sum(srt) / len(srt)
        pv = {i: sum((truth[(u, i)][h] if h in sub else pred[(u, i)][h]) * W[h] for h in range(4)) for i in el}
        top = sorted(el, key=lambda i: -pv[i])[:20]
        got += sum(tv[i] for i in top)
    return 100 * (got - rnd) / (orc - rnd)
print("model", f"{share(set()):.1f}%")
for h in range(4): print("true", H[h], f"{share({h}):.1f}%")
for h in range(4):
    xs = [math.log(max(pred[k][h],1e-6)) for k in pred]; ys = [math.log(truth[k][h]) for k in pred]
    mx, my = sum(xs)/len(xs), sum(ys)/len(ys)
    c = sum((x-mx)*(y-my) for x, y in zip(xs, ys)) / math.sqrt(sum((x-mx)**2 for x in xs) * sum((y-my)**2 for y in ys))
    ratio = sum(pred[k][h] for k in pred) / sum(truth[k][h] for k in pred)
    print(H[h], f"corr(log) {c:.3f} pred/true {ratio:.3f}")
import collections
acc = collections.defaultdict(lambda: [0,0,0,0])
for r in imps[-50000:]:
    k = (r[1], r[2])
    if k not in pred: continue
    pos = int(r[4])
    for h in range(4):
        a = acc[(pos, h)]
        a[0] += 1; a[1] += int(r[5+h]); a[2] += truth[k][h]*exam[pos-1]; a[3] += pred[k][h]
for h in range(4):
    print(H[h], " ".join(f"p{pos}: obs {acc[(pos,h)][1]/acc[(pos,h)][0]:.4f} true@pos {acc[(pos,h)][2]/acc[(pos,h)][0]:.4f} pred@1 {acc[(pos,h)][3]/acc[(pos,h)][0]:.4f} true@1 {acc[(pos,h)][2]/acc[(pos,h)][0]/exam[pos-1]:.4f}" for pos in (1,2,5,10)))
