from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn as nn

from bakeoff.errors import BakeoffError
from bakeoff.models import count_parameters, create_model, list_models, register_model

SPOT = dict(in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(9, 11, 11))


def test_simple_cnn3d_is_the_published_network():
    m = create_model("bakeoff:simple_cnn3d", **SPOT)
    assert count_parameters(m) == 17_957  # the count the zms2 authors report
    convs = [x for x in m.modules() if isinstance(x, nn.Conv3d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 4, (3, 3, 3), "same"), (4, 4, (3, 3, 3), "same")]
    linears = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(32, 512), (512, 1)]
    assert [x.p for x in m.modules() if isinstance(x, nn.Dropout)] == [0.5]
    assert m(torch.zeros(3, 1, 9, 11, 11)).shape == (3, 1)


@pytest.mark.parametrize("dims, shape", [(2, (32, 32)), (3, (9, 11, 11)), (3, (16, 16, 16))])
def test_se_resnet_2d_and_3d(dims, shape):
    m = create_model("se_resnet", in_channels=2, num_outputs=3, spatial_dims=dims, input_shape=shape,
                     params={"base_channels": 4, "num_blocks": 2})
    assert m(torch.zeros(2, 2, *shape)).shape == (2, 3)


def test_se_blocks_add_parameters_and_width_scales():
    kw = dict(SPOT, params={"base_channels": 8})
    with_se = count_parameters(create_model("se_resnet", **kw))
    no_se = count_parameters(create_model("se_resnet", **dict(SPOT, params={"base_channels": 8, "use_se": False})))
    wide = count_parameters(create_model("se_resnet", **dict(SPOT, params={"base_channels": 16})))
    assert no_se < with_se < wide
    se_modules = [x for x in create_model("se_resnet", **kw).modules() if type(x).__name__ == "SqueezeExcite"]
    assert len(se_modules) == 3


def test_unknown_names_suggest_close_matches():
    with pytest.raises(BakeoffError, match=r"unknown model 'simple_cnn' \(did you mean 'bakeoff:simple_cnn3d'\?\)"):
        create_model("simple_cnn", **SPOT)
    with pytest.raises(BakeoffError, match="unknown MONAI network 'monai:DenseNet12'.*monai:DenseNet121"):
        create_model("monai:DenseNet12", **SPOT)


def test_the_catalog_names_every_registered_model_and_loss():
    """bakeoff.catalog (read without torch by the early name check) lists what the registries build."""
    from bakeoff.catalog import BUILTIN_LOSSES, BUILTIN_MODELS
    from bakeoff.losses import LOSSES
    from bakeoff.models.registry import _REGISTRY

    assert set(BUILTIN_MODELS) == set(_REGISTRY)
    assert BUILTIN_LOSSES == {name: tuple(spec.kinds) for name, spec in LOSSES.items()}


def test_unknown_params_list_the_valid_ones():
    with pytest.raises(BakeoffError, match=r"unknown parameter\(s\) \['base_chanels'\] \('base_chanels': did you "
                                           r"mean 'base_channels'\?\); expected one of .*base_channels"):
        create_model("se_resnet", **dict(SPOT, params={"base_chanels": 8}))


def test_monai_and_timm_providers():
    m = create_model("monai:DenseNet121", in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(32, 32, 32),
                     params={"init_features": 8, "growth_rate": 4, "block_config": (1, 1, 1, 1)})
    assert m(torch.zeros(2, 1, 32, 32, 32)).shape == (2, 1)
    t = create_model("timm:resnet10t", in_channels=1, num_outputs=3, spatial_dims=2, input_shape=(32, 32))
    assert t(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    with pytest.raises(BakeoffError, match="timm models are 2D"):
        create_model("timm:resnet10t", **SPOT)


def test_module_callable_provider_and_register(monkeypatch):
    mod = types.ModuleType("my_nets")

    def tiny(in_channels, num_outputs, width=2):
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))

    mod.tiny = tiny
    mod.not_a_net = lambda: 3
    monkeypatch.setitem(sys.modules, "my_nets", mod)
    m = create_model("my_nets:tiny", **dict(SPOT, params={"width": 3}))
    assert m(torch.zeros(2, 1, 9, 11, 11)).shape == (2, 1)
    with pytest.raises(BakeoffError, match="expected a torch.nn.Module"):
        create_model("my_nets:not_a_net", **SPOT)

    @register_model(name="test_only_net")
    def _net(num_outputs: int = 1) -> nn.Module:
        return nn.Linear(1, num_outputs)

    assert "bakeoff:test_only_net" in list_models("*test_only*")
    with pytest.warns(UserWarning, match="registered twice"):
        register_model(lambda num_outputs=1: nn.Linear(1, 1), name="test_only_net")


def test_model_search_ignores_case_looks_everywhere_and_describes_each():
    from bakeoff.models.registry import model_doc

    found = list_models("*UNET*", "all")
    assert "monai:UNet" in found and "monai:AttentionUnet" in found and "monai:BasicUnet" not in found  # no aliases
    assert list_models("*unet*", "monai") == list_models("*UNet*", "monai")
    resnets = list_models("*RESNET1*", "all")
    assert "bakeoff:se_resnet" not in resnets and "timm:resnet18" in resnets
    assert "bakeoff:se_resnet" in list_models("SE_RESNET", "all")
    for name in ("monai:UNet", "monai:BasicUNet", "timm:resnet18", "bakeoff:se_resnet"):
        assert model_doc(name), name
    assert model_doc("timm:resnet18") == "Constructs a ResNet-18 model."
