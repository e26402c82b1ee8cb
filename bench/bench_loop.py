"""The learning loop in simulation on the shared RouterBench outcomes.

Production, simulated: prompts arrive in rounds; the current champion routes each at its default
tier (with ε-greedy exploration, logged propensities); the outcome is revealed **only for the
model chosen** (bandit feedback) and imported into a usage log; ``retrain`` (the code behind
``router retrain``) refits from the whole log and its gate (IPS / SNIPS / doubly robust on the
newest held-back feedback) decides whether the candidate becomes champion. Per round, on prompts
never used for feedback (25% of RouterBench by a hash of the id): AIQ and the mean quality at no
more than the cold-start router's cost, against the cold-start router, a router retrained with
full information on the same prompts (every model's outcome), and the oracle. ε = 0 against
ε > 0. Finally a poisoned round (a batch with a share of its scores inverted, then honest
traffic that the gate holds back) that the gate must refuse.

Scenario ``mix-shift`` (:func:`mix_shift`): the champion is trained on traffic without code
(ARC + Winogrande); then traffic shifts to mostly code (MBPP). The new traffic is logged as
requests; ``router drift`` (its code) is asked on the old mix (control) and on the shifted one;
a retrain on the log then routes the new traffic better (AIQ on unseen MBPP prompts).

    python bench/bench_loop.py [--rounds 3 --batch 400 --epsilons 0 0.2 --embedder hashing]
                               [--scenarios rounds mix-shift]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router import ModelCatalog, Router  # noqa: E402
from router.config import shared_data_dir  # noqa: E402
from router.embedders import with_cache  # noqa: E402
from router.serving.usage.importer import import_feedback  # noqa: E402
from router.serving.usage.store import UsageStore  # noqa: E402
from router.training.data.outcomes import read_outcomes  # noqa: E402
from router.training.evaluate.routing import (evaluate_routing, id_bucket, outcome_matrix,  # noqa: E402
                                              route_threshold, router_curve)
from router.serving.usage.record import UsageRecord, hash_prompt  # noqa: E402
from router.training.loop.drift import drift_report  # noqa: E402
from router.training.loop.retrain import RetrainConfig, retrain  # noqa: E402


def _load(path: Path, cache: str | None) -> Router:
    r = Router.load(path)
    if getattr(r.classifier, "embedder", None) is not None:
        r.classifier.embedder = with_cache(r.classifier.embedder, cache)
    return r


def _predict(r: Router, prompts: list[str], models: list[str]) -> tuple[np.ndarray, np.ndarray]:
    est = r.predict(prompts)
    cols = [r.models.index(m) for m in models]
    return est.quality[:, cols], est.cost[:, cols]


def _target(r: Router) -> float:
    return float(r.policy.tiers[r.policy.default_tier])


def _write(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in rows))
    return path


class Sim:
    def __init__(self, args: argparse.Namespace, work: Path):
        files = sorted((shared_data_dir() / "outcomes" / "routerbench").glob("*_train.csv"))
        if not files:
            sys.exit(f"no RouterBench outcomes under {shared_data_dir()}/outcomes/routerbench")
        self.catalog = ModelCatalog.load(ROOT / "models" / "routerbench.yaml")
        df = read_outcomes(files)
        df = df[df.model.isin(self.catalog.names)]
        self.models = [m for m in self.catalog.names if m in set(df.model)]
        m = outcome_matrix(df, self.models)
        test = np.array([id_bucket(p, 4) == 0 for p in m.prompt_ids])
        self.m, self.test_rows = m, np.flatnonzero(test)
        pool = np.flatnonzero(~test)
        np.random.default_rng(args.seed).shuffle(pool)
        self.pool = pool
        self.args, self.work, self.cache = args, work, args.cache
        self.test_prompts = [m.prompts[i] for i in self.test_rows]
        self.tq, self.tc = m.quality[self.test_rows], m.cost[self.test_rows]
        self.cold = Router.default(self.catalog).save(work / "cold")
        cold = _load(self.cold, self.cache)
        pq, pc = _predict(cold, self.test_prompts, self.models)
        choice = route_threshold(pq, pc, _target(cold))
        rows = np.arange(len(choice))
        self.budget = float(self.tc[rows, choice].mean())
        self.cold_point = {"cost": self.budget, "quality": float(self.tq[rows, choice].mean())}

    def score(self, path: Path, sources: set[str] | None = None) -> dict:
        """AIQ and quality at the cold-start router's cost on the test prompts (of ``sources``)."""
        keep = [k for k, i in enumerate(self.test_rows) if sources is None or self.m.sources[i] in sources]
        rows = self.test_rows[keep]
        tq, tc = self.tq[keep], self.tc[keep]
        pq, pc = _predict(_load(path, self.cache), [self.test_prompts[k] for k in keep], self.models)
        from router.training.evaluate.routing import OutcomeMatrix

        om = OutcomeMatrix([self.m.prompt_ids[i] for i in rows], [self.m.prompts[i] for i in rows],
                           [self.m.sources[i] for i in rows], self.models, tq, tc)
        rep = evaluate_routing(om, {"r": (pq, pc)})
        best = max((p["quality"] for mode in ("threshold", "gap")
                    for p in router_curve(pq, pc, tq, tc, mode) if p["cost"] <= self.budget + 1e-12),
                   default=float("nan"))
        return {"aiq": round(rep["routers"]["r"]["aiq"], 4), "quality_at_base_cost": round(best, 4),
                "oracle": rep["oracle"], "best_single": rep["best_single_model"]}

    def bandit_rows(self, champion: Path, idx: np.ndarray, eps: float, round_no: int, rng,
                    poison: float = 0.0) -> list[dict]:
        r = _load(champion, self.cache)
        prompts = [self.m.prompts[i] for i in idx]
        pq, pc = _predict(r, prompts, self.models)
        choice = route_threshold(pq, pc, _target(r))
        k = len(self.models)
        rows = []
        for n, (i, c) in enumerate(zip(idx, choice)):
            a = int(rng.integers(k)) if rng.random() < eps else int(c)
            p = (1 - eps + eps / k) if a == c else eps / k
            s = float(self.m.quality[i, a])
            if poison and rng.random() < poison:
                s = 1.0 - s
            rows.append({"prompt_id": self.m.prompt_ids[i], "prompt": self.m.prompts[i], "model": self.models[a],
                         "score": s, "cost": float(self.m.cost[i, a]), "propensity": p,
                         "created_at": 1_700_000_000 + round_no * 100_000 + n, "source": self.m.sources[i]})
        return rows

    def full_rows(self, idx: np.ndarray) -> list[dict]:
        return [{"prompt_id": self.m.prompt_ids[i], "prompt": self.m.prompts[i], "model": m,
                 "score": float(self.m.quality[i, j]), "cost": float(self.m.cost[i, j]),
                 "created_at": 1_700_000_000 + n, "source": self.m.sources[i]}
                for n, i in enumerate(idx) for j, m in enumerate(self.models)]

    def retrain(self, db: str, base: Path, out: Path, holdout: float = 0.2):
        cfg = RetrainConfig(usage_db=db, base=str(base), out=out, cache=self.cache, holdout=holdout,
                            embedder=self.args.embedder if base == self.cold else None, outcomes=[Path("none")])
        return retrain(cfg)


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    t0 = time.perf_counter()
    try:
        sim = Sim(args, work)
        out: dict = {"test_prompts": len(sim.test_rows), "models": len(sim.models), "embedder": args.embedder,
                     "cold_start": {**sim.score(sim.cold), "default_tier_point": sim.cold_point}}
        B, R = args.batch, args.rounds
        for eps in args.epsilons:
            rng = np.random.default_rng(args.seed)
            db = f"sqlite:///{work / f'usage_eps{eps}.db'}"
            champion, rounds = sim.cold, []
            for r in range(1, R + 1):
                idx = sim.pool[(r - 1) * B: r * B]
                with UsageStore(db) as store:
                    import_feedback(store, _write(sim.bandit_rows(champion, idx, eps, r, rng), work / "fb.jsonl"))
                res = sim.retrain(db, champion, work / f"eps{eps}-r{r}")
                g = res.report["gate"]
                entry = {"round": r, "feedback_rows": r * B, "verdict": g["verdict"], "reasons": res.reasons,
                         "candidate": sim.score(res.path),
                         "dr_quality": {s: round(g[s]["quality"]["dr"]["value"], 4) for s in ("base", "candidate")
                                        if s in g},
                         "ess": g.get("checks", {}).get("ess")}
                if res.promote:
                    champion = res.path
                entry["champion"] = sim.score(champion)
                rounds.append(entry)
                print(json.dumps({"eps": eps, **entry}, default=float), file=sys.stderr, flush=True)
            out[f"eps={eps}"] = rounds
            if eps == max(args.epsilons):
                # poisoned round: a share of inverted scores, then honest traffic held back for the gate
                rest = sim.pool[R * B:]
                n_poison = min(B, 2 * len(rest) // 3)
                idx, honest = rest[:n_poison], rest[n_poison: n_poison + B // 2]
                rows = sim.bandit_rows(champion, idx, eps, R + 1, rng, poison=args.poison)
                rows += sim.bandit_rows(champion, honest, eps, R + 2, rng)
                with UsageStore(db) as store:
                    import_feedback(store, _write(rows, work / "poison.jsonl"))
                total = R * B + len(idx) + len(honest)  # one context per imported prompt
                res = sim.retrain(db, champion, work / "poisoned", holdout=len(honest) / total)
                out["poisoned_round"] = {"poison_share": args.poison, "poisoned_rows": len(idx),
                                         "honest_held_back": len(honest), "verdict": res.report["gate"]["verdict"],
                                         "reasons": res.reasons, "candidate": sim.score(res.path),
                                         "champion_kept": sim.score(champion)}
                print(json.dumps(out["poisoned_round"], default=float), file=sys.stderr, flush=True)
        # full information on the same prompts as the loop's R rounds
        db = f"sqlite:///{work / 'usage_full.db'}"
        with UsageStore(db) as store:
            import_feedback(store, _write(sim.full_rows(sim.pool[: R * B]), work / "full.jsonl"))
        res = sim.retrain(db, sim.cold, work / "full", holdout=0.2)
        out["full_information"] = {**sim.score(res.path), "verdict": res.report["gate"]["verdict"]}
        out["seconds"] = round(time.perf_counter() - t0, 1)
        out["machine"] = f"{platform.machine()}, {__import__('os').cpu_count()} cores, {platform.python_version()}"
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _log_requests(sim: Sim, champion: Path, rows: list[dict], store: UsageStore) -> None:
    """Log the bandit rows as the requests they were (the champion's task, the model answered)."""
    r = _load(champion, sim.cache)
    preds = r.classify([x["prompt"] for x in rows])
    for x, p in zip(rows, preds):
        store.log(UsageRecord(
            request_id=f"req-{x['prompt_id']}-{x['created_at']}", created_at=float(x["created_at"]), task=p.task,
            model=x["model"], requested_model="auto", tier=None, predicted_quality=None, prompt_tokens=0,
            completion_tokens=0, cost_usd=x["cost"], latency_ms=1.0, status="ok", routed_model=x["model"],
            propensity=x["propensity"], prompt=x["prompt"], prompt_hash=hash_prompt(x["prompt"]),
            classifier_text=r.classifier_text(x["prompt"])))
    store.flush(60)


def mix_shift(sim: Sim, args: argparse.Namespace, work: Path) -> dict:
    """Train on the old mix (no code), shift traffic to mostly code, ask drift, retrain."""
    rng = np.random.default_rng(args.seed + 7)
    old_src, new_src = {"arc-challenge", "winogrande"}, {"mbpp"}
    pool_old = np.array([i for i in sim.pool if sim.m.sources[i] in old_src])
    pool_new = np.array([i for i in sim.pool if sim.m.sources[i] in new_src])
    eps, B = 0.2, args.batch
    db = f"sqlite:///{work / 'usage_shift.db'}"
    t_old, t_ctl, t_new = 1, 2, 3  # rounds: old mix, old mix again (control), shifted mix
    old_rows = sim.bandit_rows(sim.cold, pool_old[:B], eps, t_old, rng)
    with UsageStore(db, store_prompts=True) as store:
        import_feedback(store, _write(old_rows, work / "old.jsonl"))
        _log_requests(sim, sim.cold, old_rows, store)
    trained_old = sim.retrain(db, sim.cold, work / "shift-old").path  # the router deployed on the old mix
    reference = [x["prompt"] for x in old_rows]
    ctl_rows = sim.bandit_rows(trained_old, pool_old[B: B + len(pool_new)], eps, t_ctl, rng)
    n_new = len(pool_new)
    mixed = list(pool_new) + list(pool_old[2 * B: 2 * B + n_new // 3])  # 75% code
    rng.shuffle(mixed)
    new_rows = sim.bandit_rows(trained_old, np.array(mixed), eps, t_new, rng)
    out: dict = {"old_mix_prompts": len(old_rows), "control_prompts": len(ctl_rows), "shifted_prompts": len(new_rows),
                 "shifted_code_share": round(n_new / len(mixed), 3)}
    ctl_db = f"sqlite:///{work / 'usage_ctl.db'}"
    router_old = _load(trained_old, sim.cache)
    for name, rows, url in (("control", ctl_rows, ctl_db), ("shifted", new_rows, db)):
        with UsageStore(url, store_prompts=True) as store:
            _log_requests(sim, trained_old, rows, store)
            t0 = float(min(x["created_at"] for x in rows))
            rep = drift_report(router_old, store, since=t0, reference_texts=reference, sample=500)
        c = rep["checks"]
        out[f"drift_{name}"] = {"verdict": rep["verdict"]["text"], "task_tv": c["task_mix"]["tv"],
                                "model_share_tv": c["model_share"]["tv"], "mmd2": c["embedding"]["mmd2"],
                                "mmd2_noise_floor": c["embedding"]["mmd2_noise_floor"]}
        print(json.dumps({f"drift_{name}": out[f"drift_{name}"]}), file=sys.stderr, flush=True)
    with UsageStore(db) as store:
        import_feedback(store, _write(new_rows, work / "new.jsonl"))
    res = sim.retrain(db, trained_old, work / "shift-new", holdout=0.2)
    out["retrain_after_shift"] = {"verdict": res.report["gate"]["verdict"], "reasons": res.reasons}
    for name, path in (("cold_start", sim.cold), ("trained_on_old_mix", trained_old), ("retrained_after_shift", res.path)):
        out[name] = {"code_test": sim.score(path, new_src), "old_mix_test": sim.score(path, old_src)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=400)
    ap.add_argument("--epsilons", type=float, nargs="+", default=[0.0, 0.2])
    ap.add_argument("--poison", type=float, default=0.8, help="share of the poisoned batch's scores inverted")
    ap.add_argument("--embedder", default="minilm-onnx+use@views")
    ap.add_argument("--cache", default=None, help="embedding cache ('' disables; default the project's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", nargs="+", choices=["rounds", "mix-shift"], default=["rounds", "mix-shift"])
    args = ap.parse_args()
    out = run(args) if "rounds" in args.scenarios else {}
    if "mix-shift" in args.scenarios:
        work = Path(tempfile.mkdtemp(prefix="bench-shift-"))
        try:
            out["mix_shift"] = mix_shift(Sim(args, work), args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
