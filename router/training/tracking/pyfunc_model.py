"""The router as an MLflow pyfunc model, logged as a "model from code".

``mlflow.pyfunc.load_model("models:/NAME@champion").predict(df)``: ``df`` has a ``prompt``
column (strings, or OpenAI message lists); optional params ``tier``, ``min_quality``,
``max_cost`` (defaults "" / -1 mean "not set"). Returns one row per prompt: model, task, task_confidence, task_source,
complexity, tier, rule, predicted_quality, estimated_cost.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

COLUMNS = ["model", "task", "task_confidence", "task_source", "complexity", "tier", "rule",
           "predicted_quality", "estimated_cost"]


class RouterPyfunc(PythonModel):
    def load_context(self, context) -> None:
        from router import Router

        self.router = Router.load(context.artifacts["router"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            if "prompt" not in model_input.columns:
                raise ValueError("input needs a 'prompt' column")
            prompts = model_input["prompt"].tolist()
        else:
            prompts = list(model_input)
        params = dict(params or {})

        def opt(key):  # the params schema needs typed defaults: negative numbers / "" mean unset
            v = params.get(key)
            return None if v is None or v == "" or (isinstance(v, (int, float)) and v < 0) else v

        decisions = self.router.route_many(
            prompts, tier=opt("tier"), min_quality=opt("min_quality"), max_cost=opt("max_cost"))
        return pd.DataFrame([{
            "model": d.model, "task": d.task, "task_confidence": d.task_confidence, "task_source": d.task_source,
            "complexity": d.complexity, "tier": d.tier, "rule": d.rule, "predicted_quality": d.quality,
            "estimated_cost": d.estimated_cost} for d in decisions], columns=COLUMNS)


mlflow.models.set_model(RouterPyfunc())
