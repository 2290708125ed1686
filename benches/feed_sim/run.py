import csv, json, os, subprocess, sys, time, urllib.request
FEED = os.environ.get("FEEDCTL", os.path.expanduser("~/.cache/feed/target/debug/feedctl"))
D = os.environ.get("FEED_SIM_DIR", "/tmp/exp/feed")
def rows(p):
    with open(p) as f:
        r = csv.reader(f); next(r); return list(r)
truth = {(r[0], r[1]): [float(x) for x in r[2:6]] for r in rows(f"{D}/truth.csv")}
exam = [float(r[1]) for r in rows(f"{D}/examination.csv")]
imps = rows(f"{D}/impressions.csv")
items = [r[0] for r in rows(f"{D}/items.csv")]
seen = {}
for r in rows(f"{D}/events.csv"):
    if r[3] != "hide": seen.setdefault(r[0], set()).add(r[1])
W = [1, 15, 30, -100]
def auc(s, y):
    o = sorted(range(len(s)), key=lambda i: s[i]); rs = 0; pos = 0; i = 0
    while i < len(o):
        j = i
        while j + 1 < len(o) and s[o[j+1]] == s[o[i]]: j += 1
        for k in o[i:j+1]:
            if y[k]: rs += (i + j + 2) / 2; pos += 1
        i = j + 1
    neg = len(s) - pos
    return (rs - pos*(pos+1)/2) / (pos*neg)
class Server:
    """`feedctl serve` over a home on a free port, for the HTTP API (one process, the model
    loaded once, as the e2e test measures)."""
    def __init__(self, home):
        self.p = subprocess.Popen([FEED, "--home", home, "serve", "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addr = self.p.stdout.readline().strip().removeprefix("listening on ")
    def post(self, path, body):
        req = urllib.request.Request(self.addr + path, json.dumps(body).encode(), {"content-type": "application/json"})
        with urllib.request.urlopen(req) as r: return json.loads(r.read())
    def rank(self, model, user, limit=20):
        return self.post(f"/models/{model}/rank", {"user_id": user, "limit": limit})["ids"]
    def query(self, model, q, params):
        return self.post("/query", {"model": model, "query": q, "params": params})["results"]
    def close(self): self.p.kill(); self.p.wait()
HEADS = ["like", "comment", "share", "hide"]
def predictions(home, name):
    """Each head's served probability for every eligible pair of every engaged user:
    {(user, item): [p per head]}."""
    pred, server = {}, Server(home)
    for u in [f"u{i}" for i in range(200) if f"u{i}" in seen]:
        for h, hn in enumerate(HEADS):
            q = f"SELECT * FROM popular(limit = 10000) WHERE NOT seen($user_id) ORDER BY score(ranker.{hn}) LIMIT 300"
            for r in server.query(name, q, {"user_id": u}):
                pred.setdefault((u, r["id"]), [0]*4)[h] = float(r["score"])
    server.close()
    return pred
def run(yaml_text, tag, nusers=40):
    home = f"{D}/../home_{tag}"; subprocess.run(["rm", "-rf", home])
    path = f"{D}/{tag}.yaml"; open(path, "w").write(yaml_text)
    env = dict(os.environ, FEED_HOME=home)
    t = time.time()
    p = subprocess.run([FEED, "create-model", "--file", path], env=env, capture_output=True, text=True)
    dt = time.time() - t
    if p.returncode: print(p.stdout, p.stderr); sys.exit(1)
    name = [l for l in yaml_text.splitlines() if l.startswith("model:")][0].split("name:")[1].split(",")[0].strip()
    v = json.loads(subprocess.run([FEED, "view-model", "--model-name", name, "--json"], env=env, capture_output=True, text=True).stdout)
    rk = v["metrics"]["policies"]["ranker"]["ranker"]
    tf = rk["test_from"]
    test = [r for r in imps if int(r[3]) >= tf]
    out = [f"{tag}: train {dt:.0f}s"]
    for h in range(4):
        b = [exam[int(r[4])-1] * truth[(r[1], r[2])][h] for r in test]
        y = [r[5+h] == "1" for r in test]
        opt = auc(b, y); m = rk["heads"][h]["test"]["auc"]
        out.append(f"{rk['heads'][h]['head']} {m:.4f}/{opt:.4f} gap {opt-m:+.4f} ece {rk['heads'][h]['test']['ece']:.4f}")
    orc = rnd = rank = 0
    server = Server(home)
    for u in [f"u{i}" for i in range(nusers)]:
        if u not in seen: continue
        el = sorted((sum(p*w for p, w in zip(truth[(u, i)], W)) for i in items if i not in seen[u]), reverse=True)
        orc += sum(el[:20]); rnd += 20 * sum(el) / len(el)
        top = server.rank(name, u)
        rank += sum(sum(p*w for p, w in zip(truth[(u, i)], W)) for i in top)
    server.close()
    out.append(f"feed share {100*(rank-rnd)/(orc-rnd):.1f}% ({nusers} users)")
    print(" | ".join(out), flush=True)
    return home
if __name__ == "__main__":
    base = open(f"{D}/model.yaml").read()
    tag = sys.argv[1]; n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    text = base
    for sub in sys.argv[2].split(";;") if len(sys.argv) > 2 and sys.argv[2] else []:
        a, b = sub.split("=>"); assert a in text, a; text = text.replace(a, b)
    run(text, tag, n)
