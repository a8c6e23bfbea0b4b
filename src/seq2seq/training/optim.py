"""Adam on PyTorch's fused kernel, without torch.optim's start-up cost.

Building or stepping any torch.optim optimizer imports torch._dynamo, compiled or not: 0.75 s with a warm disk
cache and 1.1-1.5 s with a cold one, a fifth of the time to the first step of the eng-fra benchmark. This class runs
the kernel behind `torch.optim.Adam(fused=True)` and keeps that optimizer's `param_groups` and `state_dict` layout, so
`torch.amp.GradScaler` drives it and checkpoints of either load into the other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

ParamGroups = Iterable[Tensor] | Iterable[dict[str, Any]]
"""Parameters, or groups of them as torch.optim takes them: {"params": [...], "lr": ..., ...} (lr, betas, eps)."""

SETTINGS = {"weight_decay": 0.0, "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
            "differentiable": False, "fused": True, "decoupled_weight_decay": False}
"""torch.optim.Adam(fused=True)'s other group settings, for its state_dict layout; this class has them fixed."""


class FusedAdam:
    """Adam (Kingma and Ba, 2015) without weight decay: one fused kernel call per group, device and dtype each step.

    Each group's learning rate is its `lr`, which a schedule may change between steps. Parameters without a
    gradient at a step are left alone, and their moments and step count do not advance.
    """

    def __init__(self, parameters: ParamGroups, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        given = list(parameters)
        groups = given if given and isinstance(given[0], dict) else [{"params": given}]
        self.param_groups: list[dict[str, Any]] = [
            {"lr": lr, "betas": betas, "eps": eps, **SETTINGS, **group, "params": list(group["params"])}
            for group in groups]
        for group in self.param_groups:
            fixed = {key: group[key] for key in SETTINGS if key != "fused" and group[key] != SETTINGS[key]}
            if fixed:
                raise ValueError(f"FusedAdam has no {', '.join(fixed)} (given {fixed})")
        self.state: dict[Tensor, dict[str, Tensor]] = {}

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            self._step_group(group)

    def _step_group(self, group: dict[str, Any]) -> None:
        batches: dict[tuple[torch.device, torch.dtype], list[tuple[Tensor, dict[str, Tensor]]]] = defaultdict(list)
        for param in group["params"]:
            if param.grad is not None:
                batches[param.device, param.dtype].append((param, self._state_of(param)))
        beta1, beta2 = group["betas"]
        for entries in batches.values():
            params, states = zip(*entries, strict=True)
            steps = [state["step"] for state in states]
            torch._foreach_add_(steps, 1.0)
            torch._fused_adam_(list(params), [p.grad for p in params], [s["exp_avg"] for s in states],
                               [s["exp_avg_sq"] for s in states], [], steps, lr=group["lr"], beta1=beta1,
                               beta2=beta2, weight_decay=0.0, eps=group["eps"], amsgrad=False, maximize=False)

    def _state_of(self, param: Tensor) -> dict[str, Tensor]:
        if param not in self.state:
            self.state[param] = {"step": torch.zeros((), dtype=torch.float32, device=param.device),
                                 "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format)}
        return self.state[param]

    def _params(self) -> list[Tensor]:
        """Every group's parameters in order: a parameter's position in the state_dict."""
        return [param for group in self.param_groups for param in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: per-parameter state by position (counted over the groups), and each group's
        settings."""
        positions = {param: index for index, param in enumerate(self._params())}
        groups, start = [], 0
        for group in self.param_groups:
            settings = {key: value for key, value in group.items() if key != "params"}
            groups.append({**settings, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        return {"state": {positions[param]: dict(state) for param, state in self.state.items()},
                "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore from `state_dict` (this class's or torch.optim.Adam's, the same groups over the same parameters)."""
        saved_groups = state_dict["param_groups"]
        if [len(g["params"]) for g in saved_groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the saved optimizer state does not match the model's parameters")
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            group.update(lr=saved["lr"], betas=tuple(saved["betas"]), eps=saved["eps"])
        params = self._params()
        self.state = {}
        for position, saved in state_dict["state"].items():
            param = params[int(position)]
            self.state[param] = {"step": saved["step"].to(param.device, torch.float32, copy=True),
                                 "exp_avg": saved["exp_avg"].to(param, copy=True),
                                 "exp_avg_sq": saved["exp_avg_sq"].to(param, copy=True)}
