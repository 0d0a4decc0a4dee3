"""clipdesk.model: OpenAI-compatible CLIP (names, shapes, numerics) and reading architectures back."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import reference_checkpoint, reference_expected

from clipdesk.errors import CheckpointError, ClipdeskError
from clipdesk.model import (
    CLIP, CONFIGS, ClipConfig, build_model, config_from_state_dict, create_model, get_config,
)
from clipdesk.model.transformer import ResidualAttentionBlock, attend, causal_mask

REFERENCES = ["openai-vit-tiny", "openai-rn-tiny"]

# Parameter counts of OpenAI's released models, as their own code reports them.
OPENAI_PARAMETERS = {
    "RN50": 102_007_137,
    "RN101": 119_688_033,
    "RN50x4": 178_300_601,
    "ViT-B/32": 151_277_313,
    "ViT-B/16": 149_620_737,
    "ViT-L/14": 427_616_513,
    "ViT-L/14@336": 427_944_193,
}

# Small shapes of both families, with narrow text towers, for fast round trips.
SMALL_VIT = ClipConfig(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64,
                       vision_patch_size=8, vision_heads=1, context_length=16, vocab_size=1000,
                       text_width=64, text_heads=1, text_layers=3)
SMALL_RESNET = ClipConfig(embed_dim=32, image_resolution=64, vision_layers=(2, 1, 3, 1), vision_width=8,
                          vision_patch_size=None, vision_heads=4, context_length=16, vocab_size=1000,
                          text_width=64, text_heads=1, text_layers=2)


def load_reference(name):
    return torch.load(reference_checkpoint(name), map_location="cpu", weights_only=True)


def on_meta(config):
    """The model's parameters as shapes only: no memory for the 400M-parameter configs."""
    with torch.device("meta"):
        return CLIP(config)


# --- OpenAI reference ground truth ---------------------------------------------------------------

@pytest.mark.parametrize("name", REFERENCES)
def test_reference_features_match_openai(name):
    model = build_model(load_reference(name))
    expected = reference_expected(name)
    with torch.no_grad():
        image = model.encode_image(torch.from_numpy(expected["pixels"]))
        text = model.encode_text(torch.from_numpy(expected["token_ids"]))
    for got, want in ((image, expected["image_features"]), (text, expected["text_features"])):
        want = torch.from_numpy(want)
        diff = (got - want).abs().max().item()
        cosine = torch.nn.functional.cosine_similarity(got, want, dim=-1).min().item()
        print(f"{name}: max abs diff {diff:.2e}, min cosine {cosine:.8f}")
        assert diff < 1e-4
        assert cosine > 1 - 1e-6
    assert model.logit_scale.exp().item() == pytest.approx(float(expected["logit_scale"]), rel=1e-6)


@pytest.mark.parametrize("name", REFERENCES)
def test_reference_model_is_fp32_eval_and_forward_is_normalised(name):
    model = build_model(load_reference(name))
    assert not model.training and all(p.dtype == torch.float32 for p in model.parameters())
    expected = reference_expected(name)
    with torch.no_grad():
        image, text, scale = model(torch.from_numpy(expected["pixels"]), torch.from_numpy(expected["token_ids"]))
    assert torch.allclose(image.norm(dim=-1), torch.ones(len(image)), atol=1e-5)
    assert torch.allclose(text.norm(dim=-1), torch.ones(len(text)), atol=1e-5)
    assert scale.item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_reference_architectures_are_read_from_shapes():
    assert config_from_state_dict(load_reference("openai-vit-tiny")) == ClipConfig(
        embed_dim=64, image_resolution=64, vision_layers=2, vision_width=64, vision_patch_size=16,
        vision_heads=1, context_length=77, vocab_size=49408, text_width=64, text_heads=1, text_layers=2)
    assert config_from_state_dict(load_reference("openai-rn-tiny")) == ClipConfig(
        embed_dim=64, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=16,
        vision_patch_size=None, vision_heads=8, context_length=77, vocab_size=49408, text_width=64,
        text_heads=1, text_layers=2)


@pytest.mark.parametrize("name", REFERENCES)
def test_state_dict_layout_equals_openai(name):
    reference = load_reference(name)
    ours = on_meta(config_from_state_dict(reference)).state_dict()
    assert list(ours) == list(reference)  # same names, same order
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    assert "attn_mask" not in ours  # the causal mask is rebuilt, never saved


def test_torchscript_metadata_keys_are_ignored_and_input_untouched():
    state_dict = dict(load_reference("openai-vit-tiny"))
    state_dict.update(input_resolution=64, context_length=77, vocab_size=49408)
    model = build_model(state_dict)
    assert model.config.image_resolution == 64
    assert "input_resolution" in state_dict and state_dict["visual.proj"].dtype == torch.float16


# --- configs and round trips ---------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CONFIGS))
def test_named_config_round_trips_through_state_dict_shapes(name):
    config = CONFIGS[name]
    model = on_meta(config)
    assert config_from_state_dict(model.state_dict(), config.activation) == config
    if name in OPENAI_PARAMETERS:
        assert sum(p.numel() for p in model.parameters()) == OPENAI_PARAMETERS[name]


@pytest.mark.parametrize("config", [SMALL_VIT, SMALL_RESNET], ids=["vit", "resnet"])
def test_small_models_round_trip_and_reload(config):
    model = create_model(config).eval()
    state_dict = model.state_dict()
    assert config_from_state_dict(state_dict) == config
    rebuilt = build_model({k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()})
    assert rebuilt.config == config
    pixels = torch.randn(2, 3, config.image_resolution, config.image_resolution)
    ids = torch.tensor([[998, 5, 999] + [0] * 13, [998, 2, 3, 4, 999] + [0] * 11])
    with torch.no_grad():
        half_model = create_model(config).eval()
        half_model.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                                    for k, v in state_dict.items()})
        assert torch.allclose(rebuilt.encode_image(pixels), half_model.encode_image(pixels), atol=1e-5)
        assert torch.allclose(rebuilt.encode_text(ids), half_model.encode_text(ids), atol=1e-5)


def test_head_counts_can_be_overridden():
    config = dataclasses.replace(SMALL_VIT, vision_heads=4, text_heads=2)
    state_dict = create_model(config).state_dict()
    assert config_from_state_dict(state_dict).vision_heads == 1  # not visible in the weights
    assert build_model(state_dict, vision_heads=4, text_heads=2).config == config


def test_activation_is_a_config_field():
    gelu = build_model(create_model(SMALL_VIT).state_dict(), activation="gelu")
    assert gelu.config.activation == "gelu"
    assert isinstance(gelu.transformer.resblocks[0].mlp.gelu, torch.nn.GELU)


def test_config_json_round_trip():
    for config in CONFIGS.values():
        assert ClipConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert get_config("RN50").is_vit is False and get_config("ViT-B/32").is_vit is True


def test_unknown_config_names_known_ones():
    with pytest.raises(ClipdeskError, match="ViT-B/32") as error:
        get_config("ViT-Z/99")
    assert "tiny" in str(error.value) and "\n" not in str(error.value)


def test_invalid_configs_are_refused():
    with pytest.raises(ClipdeskError, match="activation"):
        dataclasses.replace(SMALL_VIT, activation="relu")
    with pytest.raises(ClipdeskError, match="divisible"):
        dataclasses.replace(SMALL_VIT, text_heads=3)
    with pytest.raises(ClipdeskError, match="unknown fields"):
        ClipConfig.from_dict({**SMALL_VIT.to_dict(), "colour": "red"})


# --- bad checkpoints -----------------------------------------------------------------------------

def one_line_error(state_dict) -> str:
    with pytest.raises(CheckpointError) as error:
        build_model(state_dict)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture
def good_state_dict():
    return dict(create_model(SMALL_VIT).state_dict())


def test_missing_key_is_named(good_state_dict):
    del good_state_dict["transformer.resblocks.1.mlp.c_fc.bias"]
    assert "missing: transformer.resblocks.1.mlp.c_fc.bias" in one_line_error(good_state_dict)


def test_missing_middle_block_is_not_a_shallower_model(good_state_dict):
    for key in [k for k in good_state_dict if k.startswith("transformer.resblocks.1.")]:
        del good_state_dict[key]
    assert "12 missing: transformer.resblocks.1.attn.in_proj_weight" in one_line_error(good_state_dict)


def test_extra_key_is_named(good_state_dict):
    good_state_dict["visual.head.weight"] = torch.zeros(3)
    assert "unexpected: visual.head.weight" in one_line_error(good_state_dict)


def test_misshapen_key_is_named(good_state_dict):
    good_state_dict["visual.ln_post.bias"] = torch.zeros(65)
    assert "wrong shape: visual.ln_post.bias [65] (expected [64])" in one_line_error(good_state_dict)


def test_many_problems_stay_on_one_line(good_state_dict):
    for index in range(10):
        good_state_dict[f"extra.{index}"] = torch.zeros(1)
    assert "10 unexpected: extra.0, extra.1, extra.2 and 7 more" in one_line_error(good_state_dict)


def test_not_a_clip_checkpoint():
    assert "visual.layer1.0.conv1.weight" in one_line_error({"fc.weight": torch.zeros(2, 2)})
    assert "state dict" in one_line_error([1, 2, 3])


# --- building blocks -----------------------------------------------------------------------------

@pytest.mark.parametrize("masked", [False, True])
def test_attention_equals_torch_multihead_attention(masked):
    torch.manual_seed(0)
    block = ResidualAttentionBlock(64, 4).eval()
    x = torch.randn(3, 10, 64)
    mask = causal_mask(10) if masked else None
    with torch.no_grad():
        ours = block.attention(x, mask)
        theirs = block.attn(x, x, x, need_weights=False, attn_mask=mask)[0]
    assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_fused_attention_kernel_agrees(masked):
    """On the CPU in float32: the fused kernel (F.scaled_dot_product_attention, the branch a GPU takes)
    computes what the plain matmul + softmax branch does. The GPU itself, in half precision, is the CUDA
    test below."""
    q, k, v = torch.randn(3, 2, 4, 9, 16).unbind(0)
    mask = causal_mask(9) if masked else None
    assert torch.allclose(attend(q, k, v, mask, fused=True), attend(q, k, v, mask, fused=False), atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_attention_agrees_on_cuda_under_autocast(masked, dtype, monkeypatch):
    """What GPU training runs: a block's attention on CUDA under autocast, through the fused kernel,
    against nn.MultiheadAttention's own forward in float64 on the CPU."""
    import copy

    torch.manual_seed(0)
    block = ResidualAttentionBlock(64, 4).eval()
    x = torch.randn(3, 10, 64)
    mask = causal_mask(10) if masked else None
    reference = copy.deepcopy(block).double()
    fused_calls = []
    fused = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *args, **kwargs: fused_calls.append(args[0].dtype) or fused(*args, **kwargs))
    with torch.no_grad():
        expected = reference.attn(*[x.double()] * 3, need_weights=False,
                                  attn_mask=None if mask is None else mask.double())[0]
        with torch.autocast("cuda", dtype=dtype):
            ours = block.cuda().attention(x.cuda(), None if mask is None else mask.cuda())
    assert fused_calls == [dtype]  # the fused kernel ran, in the autocast precision
    tolerance = 2e-2 if dtype == torch.bfloat16 else 3e-3
    assert torch.allclose(ours.double().cpu(), expected, atol=tolerance), (ours.double().cpu() - expected).abs().max()


def test_text_is_pooled_at_end_of_text_and_causal():
    model = create_model(SMALL_VIT).eval()
    ids = torch.tensor([[998, 7, 8, 999] + [0] * 12])
    changed_after_eot = ids.clone()
    changed_after_eot[0, 5] = 42  # later tokens cannot reach the end-of-text position
    with torch.no_grad():
        assert torch.allclose(model.encode_text(ids), model.encode_text(changed_after_eot), atol=1e-6)
        changed_before = ids.clone()
        changed_before[0, 1] = 9
        assert not torch.allclose(model.encode_text(ids), model.encode_text(changed_before))


def test_create_model_uses_openai_init():
    model = create_model(SMALL_RESNET)
    assert model.logit_scale.item() == pytest.approx(np.log(1 / 0.07))
    assert all(block.bn3.weight.abs().sum() == 0 for block in model.visual.layer1)
    assert model.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_trainable_configs_take_a_bf16_step(name):
    torch.manual_seed(0)
    config = get_config(name)
    model = create_model(config).train()
    pixels = torch.randn(4, 3, config.image_resolution, config.image_resolution)
    ids = torch.randint(1, 49000, (4, config.context_length))
    ids[:, 5] = 49407
    with torch.autocast("cpu", dtype=torch.bfloat16):
        image, text, scale = model(pixels, ids)
        logits = scale * image @ text.t()
        labels = torch.arange(4)
        loss = (torch.nn.functional.cross_entropy(logits, labels)
                + torch.nn.functional.cross_entropy(logits.t(), labels)) / 2
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
