"""Weight averaging (clipdesk.train.soup): the mean of every tensor, metadata kept, mismatches refused."""

from dataclasses import replace

import pytest
import torch

from clipdesk.errors import CheckpointError
from clipdesk.model import ClipConfig, create_model
from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD
from clipdesk.train.checkpoint import model_from_weights, save_weights
from clipdesk.train.soup import average_weights, main
from test_train_support import MICRO


def saved(path, config, seed, mean=OPENAI_MEAN):
    torch.manual_seed(seed)
    model = create_model(config)
    save_weights(model, path, mean, OPENAI_STD)
    return model


def test_the_soup_is_the_mean_of_every_tensor_and_keeps_config_and_normalisation(tmp_path, capsys):
    config = ClipConfig(**MICRO)
    models = [saved(tmp_path / f"{seed}.safetensors", config, seed) for seed in range(3)]
    out = tmp_path / "soup" / "model.safetensors"
    assert main([str(out), *(str(tmp_path / f"{seed}.safetensors") for seed in range(3))]) == 0
    assert "average of 3 weights files" in capsys.readouterr().out
    soup, mean, std = model_from_weights(out)
    assert soup.config == config and (mean, std) == (tuple(OPENAI_MEAN), tuple(OPENAI_STD))
    for name, tensor in soup.state_dict().items():
        expected = sum(model.state_dict()[name].double() for model in models) / 3
        assert torch.allclose(tensor.double(), expected, atol=1e-6), name


def test_weights_of_other_models_or_normalisations_are_refused_in_one_line(tmp_path, capsys):
    config = ClipConfig(**MICRO)
    saved(tmp_path / "a.safetensors", config, 0)
    saved(tmp_path / "wider.safetensors", replace(config, embed_dim=16), 1)
    saved(tmp_path / "other-mean.safetensors", config, 2, mean=(0.5, 0.5, 0.5))
    for other in ("wider", "other-mean"):
        assert main([str(tmp_path / "out.safetensors"), str(tmp_path / "a.safetensors"),
                     str(tmp_path / f"{other}.safetensors")]) == 1
        error = capsys.readouterr().err
        assert error.startswith("clipdesk soup: error: ") and "config or mean/std differ" in error
        assert error.count("\n") == 1
    (tmp_path / "broken.safetensors").write_bytes(b"not safetensors")
    assert main([str(tmp_path / "out.safetensors"), str(tmp_path / "a.safetensors"),
                 str(tmp_path / "broken.safetensors")]) == 1
    assert "cannot be read as safetensors" in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()
    with pytest.raises(CheckpointError, match="at least two"):
        average_weights([tmp_path / "a.safetensors"])
