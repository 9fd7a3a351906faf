"""Optimization-based meta-learning written natively with ``torch.func.functional_call``.

* ``maml``: MAML (Finn et al., 2017), second order: the outer gradient flows through the inner updates.
* ``fomaml``: first-order MAML: inner gradients are treated as constants.
* ``anil``: ANIL (Raghu et al., 2020): only the linear head is adapted in the inner loop.

The model is the backbone plus a linear ``n_way`` head whose initialisation is meta-learned. Batch
norm uses the statistics of the batch at hand (transductive, as in the original MAML code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from fewshot_audio.errors import ConfigError
from fewshot_audio.fewshot.strategies.base import STRATEGIES, Strategy, classification_loss, hit_rate, way_targets


@STRATEGIES.register()
class MAML(Strategy):
    """MAML: meta-learned initialisation, second-order gradients through the inner SGD steps."""

    name = "maml"
    first_order = False
    head_only = False
    inner_steps = 5
    inner_lr = 0.05
    test_steps = 10

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.head = torch.nn.Linear(self.backbone.embedding_dim, self.n_way).to(self.device)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.optimizer = torch.optim.Adam(list(self.backbone.parameters()) + list(self.head.parameters()), lr=self.lr,
                                          weight_decay=self.weight_decay)
        self._adapted: dict[str, torch.Tensor] | None = None

    # -- the functional model -------------------------------------------------------------------
    def parameters_dict(self) -> dict[str, torch.Tensor]:
        """The backbone's and head's parameters by name (``backbone.*``, ``head.*``): the weights the inner loop
        adapts."""
        params = {f"backbone.{k}": v for k, v in self.backbone.named_parameters()}
        params.update({f"head.{k}": v for k, v in self.head.named_parameters()})
        return params

    def features(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(n, d)`` of inputs ``x`` with the backbone's weights taken from ``params``."""
        backbone = {k[len("backbone."):]: v for k, v in params.items() if k.startswith("backbone.")}
        return functional_call(self.backbone, backbone, (x,)).float()

    @staticmethod
    def logits(params: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        """The head's logits ``(n, n_way)`` of embeddings ``z`` with the head's weights from ``params``."""
        return F.linear(z, params["head.weight"], params["head.bias"])

    def adapt(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, *, steps: int,
              create_graph: bool) -> dict[str, torch.Tensor]:
        """``steps`` SGD steps of size ``inner_lr`` on the support loss; returns the adapted parameters."""
        names = [n for n in params if n.startswith("head.")] if self.head_only else list(params)
        z = self.features(params, x) if self.head_only else None
        for _ in range(steps):
            feats = z if self.head_only else self.features(params, x)
            loss = classification_loss(self.logits(params, feats), y)
            grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=create_graph)
            params = {**params, **{n: params[n] - self.inner_lr * g for n, g in zip(names, grads)}}
        return params

    # -- the strategy interface -----------------------------------------------------------------
    def _check_ways(self, n_way: int) -> None:
        if n_way != self.n_way:
            raise ConfigError(f"{self.name} was meta-trained with a {self.n_way}-way head but the episodes are "
                              f"{n_way}-way; evaluate with ways={self.n_way} or retrain with ways={n_way}", param="ways")

    def train_step(self, support: torch.Tensor, query: torch.Tensor, classes: torch.Tensor, targets=None):
        n_ep, n_way, n_shot = support.shape[:3]
        self._check_ways(n_way)
        n_query = query.shape[2]
        ys = way_targets((n_ep, n_way, n_shot), None if targets is None else targets[0], self.device)
        yq = way_targets((n_ep, n_way, n_query), None if targets is None else targets[1], self.device)
        ys, yq = ys.view(n_ep, n_way * n_shot, *ys.shape[1:]), yq.view(n_ep, n_way * n_query, *yq.shape[1:])
        params = self.parameters_dict()
        total, correct = 0.0, 0.0
        for e in range(n_ep):
            # first order: the inner gradients are constants (no graph), but they are still taken at
            # the current parameters, so the outer gradient reaches the initialisation
            adapted = self.adapt(params, support[e].flatten(0, 1), ys[e], steps=self.inner_steps,
                                 create_graph=not self.first_order)
            out = self.logits(adapted, self.features(adapted, query[e].flatten(0, 1)))
            total = total + classification_loss(out, yq[e]) / n_ep
            correct = correct + hit_rate(out, yq[e]) / n_ep
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return total.detach(), correct.detach()

    def fit(self, support_x: torch.Tensor, support_y: torch.Tensor) -> None:
        self._check_ways(int(support_y.max()) + 1)
        params = {k: v.detach().requires_grad_(True) for k, v in self.parameters_dict().items()}
        adapted = self.adapt(params, support_x, support_y, steps=self.test_steps, create_graph=False)
        self._adapted = {k: v.detach() for k, v in adapted.items()}

    @torch.no_grad()
    def predict(self, query_x: torch.Tensor) -> torch.Tensor:
        return self.logits(self._adapted, self.features(self._adapted, query_x))

    def train_mode(self, training: bool) -> None:
        self.backbone.train(True)  # batch statistics at adaptation and test time too

    def state_dict(self) -> dict:
        return {**super().state_dict(), "head": self.head.state_dict()}

    def load_state_dict(self, state: dict, *, with_optimizer: bool = True) -> None:
        super().load_state_dict(state, with_optimizer=with_optimizer)
        self.head.load_state_dict(state["head"])


@STRATEGIES.register()
class FOMAML(MAML):
    """First-order MAML: no second-order terms; the query gradient at the adapted weights updates the initialisation."""

    name = "fomaml"
    first_order = True


@STRATEGIES.register()
class ANIL(MAML):
    """ANIL: almost no inner loop; only the linear head adapts per task, the body is meta-learned."""

    name = "anil"
    head_only = True
