import itertools
import math

import pytest
import torch
from torch import nn

from act3d.engine.config import OptimizerConfig, SchedulerConfig
from act3d.engine.optim import build_optimizer, build_scheduler, parameter_groups


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_no_decay_groups_follow_the_spec():
    net = Net()
    decay, no_decay = parameter_groups(net.named_parameters(), 0.05)
    assert decay["params"] == [net.fc.weight]
    assert {id(p) for p in no_decay["params"]} == {
        id(net.fc.bias),
        id(net.norm.weight),
        id(net.norm.bias),
        id(net.cls_token),
    }
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.05


def test_cosine_schedule_with_warmup():
    opt = build_optimizer(Net().named_parameters(), OptimizerConfig(lr=1e-3))
    config = SchedulerConfig(update="epoch", warmup_epochs=2, warmup_lr=1e-6, min_lr=1e-6)
    sched = build_scheduler(opt, config, epochs=10, steps_per_epoch=7)
    lrs = []
    for epoch in range(10):
        sched.step(epoch)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-6)
    assert lrs[1] == pytest.approx(1e-6 + (1e-3 - 1e-6) / 2)
    assert max(lrs) == pytest.approx(lrs[2], rel=1e-6)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
    assert lrs[-1] < 1e-4


def test_per_step_schedule_follows_the_same_curve_within_epochs():
    opt = build_optimizer(Net().named_parameters(), OptimizerConfig(lr=1e-3))
    sched = build_scheduler(
        opt, SchedulerConfig(warmup_epochs=1, warmup_lr=0.0, min_lr=0.0), epochs=4, steps_per_epoch=10
    )
    lrs = []
    for step in range(40):
        sched.step(step // 10)  # a no-op in per-step mode
        sched.step_update(step)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(5e-4)
    # timm (as the official code) runs the cosine over the whole run, warm-up included
    for step in (10, 25, 39):
        assert lrs[step] == pytest.approx(1e-3 * (1 + math.cos(math.pi * step / 40)) / 2, rel=1e-6)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))


def test_adamw_is_fused_and_takes_the_per_tensor_loops_step():
    torch.manual_seed(0)
    nets = Net(), Net()
    nets[1].load_state_dict(nets[0].state_dict())
    start = nets[0].fc.weight.detach().clone()
    fused = build_optimizer(nets[0].named_parameters(), OptimizerConfig(lr=1e-2))
    loop = torch.optim.AdamW(parameter_groups(nets[1].named_parameters(), 0.05), lr=1e-2)
    assert fused.defaults["fused"] and not loop.defaults["fused"]
    x = torch.randn(8, 4)
    for _ in range(3):
        for net, opt in zip(nets, (fused, loop), strict=True):
            opt.zero_grad()
            (net.norm(net.fc(x)) + net.cls_token).square().sum().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert (nets[0].fc.weight - start).abs().min() > 1e-3  # every entry moved: the steps were taken
