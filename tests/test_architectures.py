"""The surgery invariants on every architecture and granularity, our own and a representative
set of zoo models (timm and torchvision, by name), with real training on the smoke data through
the code path a run takes (benchmark.networks.target_network): copied blocks equal the source;
frozen ones stay bit-identical in parameters, buffers and outputs and stay in eval mode
(BatchNorm, LayerNorm, dropout, stochastic depth); fine-tuned ones move; the feature cache
trains the same weights (zoo models train without it); n = L is a run and n = L + 1 is refused."""
from dataclasses import dataclass

import pytest
import torch

from benchmark.errors import UserError
from benchmark.networks import TargetNetwork, Workspace, base_network, target_network
from benchmark.blocks import model_blocks
from benchmark.models.net import under
from benchmark.run import execute
from conftest import compose_config

ARCHITECTURES = {  # small widths: the invariants do not depend on size
    "convnet8": ["model=convnet8", "model.width=4"],
    "resnet18-stage": ["model=resnet18", "model.width=8"],
    "resnet18-block": ["model=resnet18", "model.width=8", "model.granularity=block"],
    "resnet50-block": ["model=resnet50", "model.width=8", "model.granularity=block"],
    "vit": ["model=vit", "model.hidden_dim=16", "model.num_heads=2", "model.mlp_dim=32",
            "model.depth=3", "model.dropout=0.1", "train=vit", "train.epochs=2", "train.warmup_epochs=1"],
    # zoo models by name, at their smallest (timm's test_* models) or narrowed by model.kwargs
    "timm-resnet": ["model=timm", "model.arch=test_resnet", "+model.kwargs.drop_path_rate=0.1"],
    "timm-vit": ["model=timm", "model.arch=test_vit", "+model.kwargs.img_size=24", "+model.kwargs.patch_size=8",
                 "+model.kwargs.drop_rate=0.1", "+model.kwargs.drop_path_rate=0.1"],
    "torchvision-squeezenet": ["model=torchvision", "model.arch=squeezenet1_1"],
}
SLOW_ZOO = {  # the representative set beyond the three above (each a minute on 2 cores)
    "timm-convnext": ["model=timm", "model.arch=convnext_atto", "+model.kwargs.patch_size=1",
                      "+model.kwargs.depths=[1,1,1,1]", "+model.kwargs.dims=[8,16,24,32]",
                      "+model.kwargs.drop_path_rate=0.1"],
    "timm-efficientnet": ["model=timm", "model.arch=test_efficientnet", "+model.kwargs.drop_path_rate=0.1"],
    "timm-regnet": ["model=timm", "model.arch=regnetx_002"],
    "timm-mobilenetv3": ["model=timm", "model.arch=mobilenetv3_small_050", "model.granularity=fine"],
    "timm-deit": ["model=timm", "model.arch=deit_tiny_patch16_224", "+model.kwargs.img_size=24",
                  "+model.kwargs.patch_size=8", "+model.kwargs.depth=2", "+model.kwargs.embed_dim=24",
                  "+model.kwargs.num_heads=2"],
    "timm-swin": ["model=timm", "model.arch=swin_tiny_patch4_window7_224", "+model.kwargs.img_size=24",
                  "+model.kwargs.patch_size=2", "+model.kwargs.window_size=3", "+model.kwargs.embed_dim=12",
                  "+model.kwargs.depths=[1,1,1,1]", "+model.kwargs.num_heads=[1,1,1,1]"],
    "torchvision-mobilenet_v3_small": ["model=torchvision", "model.arch=mobilenet_v3_small"],
    "torchvision-resnet18": ["model=torchvision", "model.arch=resnet18"],
}
ARCHITECTURES |= SLOW_ZOO
N = 2  # copied blocks: a prefix with normalisation layers in every architecture


@dataclass
class Trained:
    """One architecture's source (baseA) and target networks AnB2, trained once per module."""

    ws: Workspace
    source: torch.nn.Module
    frozen: TargetNetwork         # end to end
    frozen_cached: TargetNetwork  # on the prefix's cached features
    finetuned: TargetNetwork


@pytest.fixture(scope="module", params=[pytest.param(a, marks=pytest.mark.slow) if a in SLOW_ZOO else a
                                        for a in ARCHITECTURES])
def trained(request, tmp_path_factory) -> Trained:
    cache = tmp_path_factory.mktemp("cache")

    def target(*overrides: str) -> tuple[Workspace, TargetNetwork]:
        ws = Workspace.from_config(compose_config(
            "experiment=smoke", f"cache_dir={cache}", *ARCHITECTURES[request.param],
            "treatment=transfer", f"n={N}", *overrides))
        return ws, target_network(ws, f"AnB{N}")

    ws, frozen = target("finetune=false", "train.feature_cache=false")
    return Trained(ws, base_network(ws, "A").model, frozen,
                   target("finetune=false", "train.feature_cache=true")[1],
                   target("finetune=true")[1])


def _prefix_state(model, n):
    return {k: v for k, v in model.state_dict().items() if under(k, model.prefix_paths(n))}


def _probe(ws):
    return ws.normalize(ws.task("B").val.images[:8])


def _block_output(model, x, n):
    outputs = {}
    model.visit_block_outputs(x, lambda index, output: outputs.setdefault(index, output))
    return outputs[n - 1]


def test_frozen_copied_blocks_stay_bit_identical_to_the_source(trained):
    ws, source, target = trained.ws, trained.source, trained.frozen
    copied, original = _prefix_state(target.model, N), _prefix_state(source, N)
    assert copied.keys() == original.keys() and copied
    assert all(torch.equal(copied[k], original[k]) for k in copied)  # weights and buffers
    frozen = target.model.prefix_paths(N)
    assert not any(p.requires_grad for k, p in target.model.named_parameters() if under(k, frozen))
    target.model.train()  # the frozen prefix stays in eval mode through every train()
    assert all(not m.training for b in target.model.prefix_modules(N) for m in b.modules())
    with torch.no_grad():
        source.eval(), target.model.eval()
        assert torch.equal(_block_output(target.model, _probe(ws), N), _block_output(source, _probe(ws), N))
    later = target.model.block_paths(target.model.block_names[N])  # re-initialised and trained
    assert any(not torch.equal(v, source.state_dict()[k])
               for k, v in target.model.state_dict().items() if under(k, later))


def test_finetuned_copied_blocks_move(trained):
    source, target = trained.source, trained.finetuned
    copied, original = _prefix_state(target.model, N), _prefix_state(source, N)
    moved = [k for k, v in copied.items() if v.is_floating_point() and not torch.equal(v, original[k])]
    assert moved and any(k.endswith("weight") for k in moved)


def test_feature_cache_trains_the_same_weights_as_end_to_end(trained):
    cached, direct = trained.frozen_cached, trained.frozen
    assert cached.fitted.feature_cache == direct.model.runs_as_chain and not direct.fitted.feature_cache
    for key, value in cached.model.state_dict().items():
        assert torch.allclose(value.float(), direct.model.state_dict()[key].float(), atol=1e-4), key


@pytest.mark.parametrize("arch", ["resnet18-stage", "vit", "timm-resnet"])
def test_n_equal_to_depth_runs_and_one_more_is_refused(smoke_cfg, tmp_path, arch):
    cfg = smoke_cfg(*ARCHITECTURES[arch], "treatment=transfer", "finetune=false")
    depth = len(model_blocks(cfg))
    assert depth == {"resnet18-stage": 5, "vit": 4, "timm-resnet": 5}[arch]
    result = execute(smoke_cfg(*ARCHITECTURES[arch], "treatment=transfer", f"n={depth}"), tmp_path / "L")
    assert result["status"] == "ok" and result["block"] == model_blocks(cfg)[-1]
    with pytest.raises(UserError, match=f"n={depth + 1} is outside 0..{depth} for model="):
        execute(smoke_cfg(*ARCHITECTURES[arch], "treatment=transfer", f"n={depth + 1}"), tmp_path / "L1")
    assert not (tmp_path / "L1" / "result.json").exists()
