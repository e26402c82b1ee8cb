"""Answer-scorer features on RouterBench (issue 15): does an embedding of the answer (and of the
prompt) add to the hand features + model one-hot?  Held-out AUC per benchmark, same split as
`router eval` (20% of prompts by id hash), lone answers (no agreement evidence).

    python bench/bench_scorer_features.py [EMBEDDER]   (default: the distilled static folders in .cache/static-distilled)
"""
import os
import sys
import time

import numpy as np
from pathlib import Path
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from router.config import shared_data_dir
from router.training.data.outcomes import read_outcomes
from router.training.evaluate.routing import split_outcomes
from router.training.fit.scorer import answer_rows
from router.predictors.answer_scorer import answer_features
from router.embedders import make_embedder
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SPEC = sys.argv[1] if len(sys.argv) > 1 else "static:.cache/static-distilled/use+static:.cache/static-distilled/minilm"
files = sorted((shared_data_dir() / "outcomes" / "routerbench").glob("*_train.csv"))
if not files:
    sys.exit(f"no RouterBench outcomes under {shared_data_dir()}/outcomes/routerbench")
df = answer_rows(read_outcomes(files)); train, val = split_outcomes(df, 20)
models = sorted(df.model.unique())
mean = train.groupby("model").score.mean()
if len(sys.argv) <= 1:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_static import ensure_static

    ensure_static(Path(".cache/static-distilled"))
emb = make_embedder(SPEC)
def base(rows):
    F = answer_features(rows.prompt.tolist(), rows.answer.tolist(), rows.model.map(mean).to_numpy(float))
    M = np.array([[m == x for x in models] for m in rows.model], float)
    return np.hstack([F, M])
t = time.time()
EA_tr, EA_va = emb.encode(train.answer.tolist()), emb.encode(val.answer.tolist())
up = list(dict.fromkeys(df.prompt)); EP = dict(zip(up, emb.encode(up)))
EP_tr = np.stack([EP[p] for p in train.prompt]); EP_va = np.stack([EP[p] for p in val.prompt])
print("embedded", round(time.time() - t), flush=True)
ytr, yva = (train.score.to_numpy() >= 0.5).astype(int), (val.score.to_numpy() >= 0.5).astype(int)
B_tr, B_va = base(train), base(val)
def run(name, Xtr, Xva):
    clf = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0, random_state=0).fit(Xtr, ytr)
    p = clf.predict_proba(Xva)[:, 1]
    out = {"pooled": roc_auc_score(yva, p)}
    for s in sorted(val.source.unique()):
        m = (val.source == s).to_numpy(); out[s] = roc_auc_score(yva[m], p[m])
    print(name, {k: round(v, 3) for k, v in out.items()}, flush=True)
run("hand+model", B_tr, B_va)
for k in (16, 64):
    pa = PCA(k, random_state=0).fit(EA_tr); pp = PCA(k, random_state=0).fit(EP_tr)
    run(f"+answer emb {k}", np.hstack([B_tr, pa.transform(EA_tr)]), np.hstack([B_va, pa.transform(EA_va)]))
    run(f"+answer+prompt emb {k}", np.hstack([B_tr, pa.transform(EA_tr), pp.transform(EP_tr)]), np.hstack([B_va, pa.transform(EA_va), pp.transform(EP_va)]))
cos_tr = (EA_tr * EP_tr).sum(1, keepdims=True); cos_va = (EA_va * EP_va).sum(1, keepdims=True)
pa = PCA(16, random_state=0).fit(EA_tr)
run("+answer emb 16 + cos(prompt,answer)", np.hstack([B_tr, pa.transform(EA_tr), cos_tr]), np.hstack([B_va, pa.transform(EA_va), cos_va]))
