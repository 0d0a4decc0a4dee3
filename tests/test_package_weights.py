"""Weights read back out of a model package's ONNX graphs (model/package_weights.py)."""

import math

import pytest
import torch

from clipdesk.errors import ClipdeskError
from clipdesk.model import package_weights
from clipdesk.model.onnx_export import export_package
from clipdesk.model.package_weights import model_from_package
from test_export import SMALL_RESNET, SMALL_VIT, random_model


def quiet(_):
    pass


def trained_looking(config):
    """A model whose LayerNorms and biases are not at their initial ones and zeros, as after training."""
    model = random_model(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name != "logit_scale":
                parameter.add_(0.05 * torch.randn_like(parameter))
        model.logit_scale.fill_(math.log(37.2))
    return model


# Untrained: the exporter merges its equal initializers (zero biases, unit LayerNorm scales) into one.
@pytest.mark.parametrize("precision,trained", [("fp32", True), ("fp16", True), ("fp32", False)],
                         ids=["fp32", "fp16", "fp32-untrained"])
def test_every_parameter_comes_back_as_the_package_stored_it(tmp_path, precision, trained):
    model = trained_looking(SMALL_VIT) if trained else random_model(SMALL_VIT)
    package = export_package(model, tmp_path / "pkg", name="small", precision=precision, log=quiet)
    recovered = model_from_package(package)
    assert recovered.config == model.config
    original = dict(model.named_parameters())
    for name, value in recovered.named_parameters():
        if name == "logit_scale":  # stored as its exponent in the manifest
            assert value.item() == pytest.approx(original[name].item(), abs=1e-6)
            continue
        expected = original[name].detach()
        # The fp16 store rounds only tensors of 1,024 values or more; smaller ones stay fp32.
        if precision == "fp16" and expected.numel() >= 1024:
            expected = expected.half().float()
        assert torch.equal(value.detach(), expected), name


def test_a_wrong_map_is_caught_by_the_check_against_the_package(tmp_path, monkeypatch):
    package = export_package(trained_looking(SMALL_VIT), tmp_path / "pkg", name="small", log=quiet)
    probe_map = package_weights._probe_map

    def swapped(config):  # two same-shaped LayerNorm scales of the text tower exchanged
        maps = probe_map(config)
        text = maps["text.onnx"]
        slot = {source[0]: slot for slot, source in text.items()}
        a, b = slot["transformer.resblocks.0.ln_1.weight"], slot["transformer.resblocks.1.ln_1.weight"]
        text[a], text[b] = text[b], text[a]
        return maps

    monkeypatch.setattr(package_weights, "_probe_map", swapped)
    with pytest.raises(ClipdeskError, match="does not match PyTorch"):
        model_from_package(package)


def test_packages_whose_weights_cannot_be_read_back_are_refused_in_one_line(tmp_path):
    quantised = export_package(random_model(SMALL_VIT), tmp_path / "int8", name="q", precision="int8", log=quiet)
    with pytest.raises(ClipdeskError, match="stored as int8: its weights were quantised") as error:
        model_from_package(quantised)
    assert "\n" not in str(error.value)
    # The ResNet tower's BatchNorms are folded into its convolutions on export.
    resnet = export_package(random_model(SMALL_RESNET), tmp_path / "resnet", name="rn", log=quiet)
    with pytest.raises(ClipdeskError, match="'rn': the exported graphs do not hold .* parameters") as error:
        model_from_package(resnet)
    assert "\n" not in str(error.value)
