"""Reading checkpoints of every supported format, safely, into OpenAI-layout state dicts."""

import copy
import io
import json
import os
import pickle
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import reference_checkpoint, reference_expected

from clipdesk.errors import CheckpointError
from clipdesk.model import ClipConfig, build_model, create_model
from clipdesk.model.checkpoints import Checkpoint, load_checkpoint, read_torchscript_state_dict
from clipdesk.checkpoint.hf_names import ConversionError, convert_hf_clip

REFERENCE_IMAGES = Path(__file__).parent / "fixtures" / "reference"

# Tracing and scripting are how the test archives are made; their deprecation notes are noise here.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")]


def vit_config(activation="quick_gelu"):
    return ClipConfig(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64,
                      vision_patch_size=8, vision_heads=1, context_length=77, vocab_size=49408,
                      text_width=64, text_heads=1, text_layers=2, activation=activation)


def resnet_config():
    return ClipConfig(embed_dim=32, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=8,
                      vision_patch_size=None, vision_heads=4, context_length=77, vocab_size=49408,
                      text_width=64, text_heads=1, text_layers=1, activation="quick_gelu")


def randomized(model):
    """Random values everywhere (BatchNorm statistics and zero-init weights included), so that an
    exact comparison would notice any swapped or mis-transposed tensor."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.05 + (1.0 if "running_var" in name else 0.0))
                if "running_var" in name:
                    tensor.abs_()
    return model.eval()


@pytest.fixture(scope="module")
def vit():
    return randomized(create_model(vit_config()))


@pytest.fixture(scope="module")
def resnet():
    return randomized(create_model(resnet_config()))


def token_ids(batch=3, length=77):
    """CLIP-tokenizer-shaped ids: <|startoftext|> ... <|endoftext|> then zero padding."""
    g = torch.Generator().manual_seed(1)
    ids = torch.zeros(batch, length, dtype=torch.long)
    for row, n in enumerate((4, 19, length - 2)[:batch]):
        ids[row, 0] = 49406
        ids[row, 1:n + 1] = torch.randint(1, 49406, (n,), generator=g)
        ids[row, n + 1] = 49407
    return ids


def assert_same_weights(checkpoint: Checkpoint, expected: dict, dtype=None):
    assert set(checkpoint.state_dict) == set(expected)
    for key, value in expected.items():
        got = checkpoint.state_dict[key]
        want = value.to(dtype).float() if dtype is not None and value.is_floating_point() else value
        if want.is_floating_point():
            want = want.float()
            assert got.dtype == torch.float32, key
        assert torch.equal(got, want), key


def assert_refused(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    return message


# ------------------------------------------------------------------------ plain torch state dicts


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_plain_state_dict_round_trip(tmp_path, vit, legacy):
    path = tmp_path / "model.pt"
    torch.save(vit.state_dict(), path, _use_new_zipfile_serialization=not legacy)
    checkpoint = load_checkpoint(path)
    assert checkpoint.source_format == "state-dict"
    assert checkpoint.source_dtype == "float32"
    assert checkpoint.activation is None
    assert checkpoint.build_overrides == {}
    assert_same_weights(checkpoint, vit.state_dict())


def test_resnet_state_dict_round_trip(tmp_path, resnet):
    path = tmp_path / "rn.pth"
    torch.save(resnet.state_dict(), path)
    checkpoint = load_checkpoint(path)
    assert_same_weights(checkpoint, resnet.state_dict())
    assert checkpoint.state_dict["visual.bn1.num_batches_tracked"].dtype == torch.int64


def test_fp16_state_dict_with_openai_metadata(tmp_path, vit):
    state = OrderedDict((k, v.half()) for k, v in vit.state_dict().items())
    state["input_resolution"] = torch.tensor(32)
    state["context_length"] = torch.tensor(77)
    state["vocab_size"] = 49408  # a plain int, as some re-saved checkpoints hold
    path = tmp_path / "fp16.bin"
    torch.save(state, path)
    checkpoint = load_checkpoint(path)
    assert checkpoint.source_dtype == "float16"
    assert_same_weights(checkpoint, vit.state_dict(), dtype=torch.float16)


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module", "none"])
@pytest.mark.parametrize("prefix", ["", "module.", "_orig_mod.", "module._orig_mod."])
def test_openclip_wrappers_and_prefixes(tmp_path, vit, wrap, prefix):
    state = {prefix + k: v for k, v in vit.state_dict().items()}
    obj = state if wrap == "none" else {"epoch": 3, "name": "run", wrap: state,
                                        "optimizer": {"state": {}, "param_groups": []}}
    path = tmp_path / "epoch_3.pt"
    torch.save(obj, path)
    assert_same_weights(load_checkpoint(path), vit.state_dict())


def test_safetensors(tmp_path, vit):
    from safetensors.torch import save_file

    path = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    checkpoint = load_checkpoint(path)
    assert checkpoint.source_format == "safetensors"
    assert_same_weights(checkpoint, vit.state_dict())


def test_clipdesk_trained_safetensors_import_with_their_recorded_config(tmp_path):
    """Two heads of width 32 and GELU, which the weights cannot show (a guess says 1 head, quick_gelu)."""
    from dataclasses import replace

    from safetensors.torch import save_file

    from clipdesk.model.checkpoint_import import model_from_checkpoint
    from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD
    from clipdesk.train.checkpoint import save_weights

    config = replace(vit_config("gelu"), vision_heads=2, text_heads=2)
    torch.manual_seed(0)
    source = create_model(config).eval()  # OpenAI's init: attention sharp enough for head counts to matter
    path = tmp_path / "model.safetensors"
    save_weights(source, path, OPENAI_MEAN, OPENAI_STD, step="7")
    checkpoint = load_checkpoint(path)
    assert (checkpoint.source_format, checkpoint.activation) == ("safetensors", "gelu")
    assert checkpoint.build_overrides == {"vision_heads": 2, "text_heads": 2}
    notes = []
    model, provenance = model_from_checkpoint(path, log=notes.append)
    assert model.config == config and provenance["source_format"] == "safetensors" and notes == []  # no guess
    guessed = build_model(checkpoint.state_dict)
    torch.manual_seed(2)
    pixels, ids = torch.randn(3, 3, 32, 32), token_ids(3)
    with torch.no_grad():
        for encode, inputs in (("encode_image", pixels), ("encode_text", ids)):
            expected = getattr(source, encode)(inputs)
            exact = (getattr(model, encode)(inputs) - expected).abs().max().item()
            guess = (getattr(guessed, encode)(inputs) - expected).abs().max().item()
            assert exact < 1e-6 and guess > 0.05, (encode, exact, guess)

    # Metadata that does not describe the weights is refused in one line, not half believed.
    tensors = {k: v.contiguous() for k, v in source.state_dict().items()}
    metadata = {"format": "clipdesk-clip", "mean": "[0, 0, 0]", "std": "[1, 1, 1]"}
    for clip_config, named in ((json.dumps({**config.to_dict(), "embed_dim": 64}), "embed_dim 64 recorded, 32 in"),
                               ("{not json", "damaged clipdesk metadata")):
        save_file(tensors, str(path), metadata={**metadata, "clip_config": clip_config})
        with pytest.raises(CheckpointError, match=named) as error:
            load_checkpoint(path)
        assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_openclip_hub_folder_reads_activation_and_heads(tmp_path, vit):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in vit.state_dict().items()},
              str(tmp_path / "open_clip_model.safetensors"))
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {
        "embed_dim": 32, "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}}))
    checkpoint = load_checkpoint(tmp_path)
    assert (checkpoint.activation, checkpoint.vision_heads, checkpoint.text_heads) == ("quick_gelu", 2, 2)
    assert_same_weights(checkpoint, vit.state_dict())


def test_openclip_hub_folder_refuses_other_pooling(tmp_path, vit):
    torch.save(vit.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    (tmp_path / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": {"text_cfg": {"pool_type": "last"}, "vision_cfg": {}}}))
    assert_refused(tmp_path, "pool_type")


@pytest.mark.parametrize("edit, named", [
    (lambda s: {**{("text." + k if not k.startswith("visual.") else k): v for k, v in s.items()}},
     "CustomTextCLIP"),
    (lambda s: {**s, "text_decoder.resblocks.0.ln_1.weight": torch.ones(64)}, "CoCa"),
    (lambda s: {**s, "visual.attn_pool.query": torch.ones(4, 64)}, "CoCa"),
    (lambda s: {**s, "logit_bias": torch.zeros(())}, "SigLIP"),
    (lambda s: {**{k: v for k, v in s.items() if not k.startswith("visual.")},
                "visual.trunk.patch_embed.proj.weight": torch.ones(64, 3, 8, 8),
                "visual.head.proj.weight": torch.ones(32, 64)}, "timm"),
    (lambda s: {**{k: v for k, v in s.items() if k.startswith("visual.")},
                "text.transformer.embeddings.word_embeddings.weight": torch.ones(10, 64),
                "text.proj.weight": torch.ones(32, 64)}, "Hugging Face text tower"),
    (lambda s: {**s, "transformer.resblocks.0.ls_1.gamma": torch.ones(64)}, "layer scale"),
    (lambda s: {**s, "visual.blocks.0.norm1.weight": torch.ones(64)}, "EVA"),
    (lambda s: {**s, "visual.some_new_thing": torch.ones(3)}, "visual.some_new_thing"),
], ids=["custom-text", "coca-decoder", "coca-pool", "siglip", "timm", "hf-text", "layer-scale", "eva",
        "unknown-key"])
def test_openclip_layouts_that_differ_are_refused(tmp_path, vit, edit, named):
    path = tmp_path / "other.pt"
    torch.save(edit(dict(vit.state_dict())), path)
    assert_refused(path, named)


# ---------------------------------------------------------------------------------- TorchScript


def trace(model, resolution):
    pixels = torch.randn(2, 3, resolution, resolution)
    return torch.jit.trace(model, (pixels, token_ids(2)), check_trace=False)


@pytest.mark.parametrize("activation", ["quick_gelu", "gelu"])
def test_traced_vit_archive(tmp_path, activation):
    model = randomized(create_model(vit_config(activation)))
    expected = dict(model.state_dict())
    # OpenAI's archives hold these as buffers of their top module.
    for name, value in (("input_resolution", 32), ("context_length", 77), ("vocab_size", 49408)):
        model.__dict__.pop(name, None)  # a plain int attribute in clipdesk's CLIP
        model.register_buffer(name, torch.tensor(value))
    traced = trace(model, 32)
    path = tmp_path / "ViT-tiny.pt"
    traced.save(str(path))
    raw = read_torchscript_state_dict(path)
    assert raw["input_resolution"].item() == 32 and raw["vocab_size"].item() == 49408
    checkpoint = load_checkpoint(path)
    assert checkpoint.source_format == "openai-torchscript"
    assert checkpoint.activation == activation
    assert checkpoint.source_dtype == "float32"
    assert_same_weights(checkpoint, expected)
    # OpenAI released fp16 archives.
    half_path = tmp_path / "ViT-tiny-fp16.pt"
    traced.half().save(str(half_path))
    half = load_checkpoint(half_path)
    assert half.source_dtype == "float16"
    assert_same_weights(half, expected, dtype=torch.float16)


def test_traced_resnet_archive(tmp_path, resnet):
    path = tmp_path / "RN-tiny.pt"
    trace(resnet, 64).save(str(path))
    checkpoint = load_checkpoint(path)
    assert checkpoint.source_format == "openai-torchscript"
    assert_same_weights(checkpoint, resnet.state_dict())
    model = build_model(checkpoint.state_dict, checkpoint.activation or "quick_gelu")
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.encode_image(pixels), resnet.encode_image(pixels))


class Small(torch.nn.Module):
    """Parameters, a buffer, a non-buffer tensor attribute, a None bias, nested containers."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)
        self.no_bias = torch.nn.Linear(4, 4, bias=False)
        self.norm = torch.nn.LayerNorm(4)
        self.stack = torch.nn.Sequential(torch.nn.Linear(4, 4).double(), torch.nn.ReLU())
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4).half() for _ in range(2)])
        self.scale = torch.nn.Parameter(torch.randn(2, 3).t())  # non-contiguous
        self.register_buffer("counts", torch.arange(5))
        self.mask = torch.ones(3)  # a plain attribute: not in the state dict

    def forward(self, x):
        x = self.norm(self.no_bias(self.linear(x)))
        for block in self.blocks:
            x = x + block(x.half()).float()
        return self.stack(x.double()).float() * self.mask.sum() + self.counts.sum()


@pytest.mark.parametrize("make", [torch.jit.script, lambda m: torch.jit.trace(m, torch.randn(2, 3))],
                         ids=["script", "trace"])
def test_small_module_archive_matches_state_dict(tmp_path, make):
    module = Small().eval()
    path = tmp_path / "small.pt"
    make(module).save(str(path))
    tensors = read_torchscript_state_dict(path)
    expected = module.state_dict()
    assert list(tensors) == list(expected)
    for key, value in expected.items():
        assert tensors[key].dtype == value.dtype and torch.equal(tensors[key], value), key
    # Not a CLIP: load_checkpoint refuses it in one line.
    assert_refused(path, "no CLIP weights")


class Payload:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def evil_pickles(marker: Path):
    import builtins

    command = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": pickle.dumps(Payload(os.system, command), protocol=2),
        "builtins.eval": pickle.dumps(Payload(builtins.eval, code), protocol=2),
        "builtins.exec-p4": pickle.dumps(Payload(builtins.exec, code), protocol=4),
        # A module record whose attribute table hides the payload.
        "nested": pickle.dumps({"weight": Payload(os.system, command)}, protocol=2),
    }


def torchscript_zip(path: Path, data_pkl: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", data_pkl)
        archive.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("evil/code/__torch__.py", "class M(Module):\n  __parameters__ = []\n")
        archive.writestr("evil/version", "3\n")


@pytest.mark.parametrize("which", ["os.system", "builtins.eval", "builtins.exec-p4", "nested"])
def test_malicious_torchscript_archive_is_refused_without_running(tmp_path, which):
    marker = tmp_path / "pwned"
    path = tmp_path / "ViT-B-32.pt"
    torchscript_zip(path, evil_pickles(marker)[which])
    assert_refused(path, "refused", "nothing was run")
    with pytest.raises(CheckpointError):
        read_torchscript_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_malicious_torch_save_is_refused_without_running(tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"state_dict": Payload(os.system, f"touch {marker}")}, path,
               _use_new_zipfile_serialization=not legacy)
    assert_refused(path, "refused", "system")
    assert not marker.exists()


def test_torchscript_tensor_outside_its_storage_is_refused(tmp_path):
    # Hand-write the pickle: _rebuild_tensor_v2(storage(4 floats), offset 2, size (4,), stride (1,)).
    buffer = io.BytesIO()
    buffer.write(b"\x80\x02c__torch__\nM\n)\x81}(X\x06\x00\x00\x00weight"
                 b"ctorch._utils\n_rebuild_tensor_v2\n("
                 b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
                 b"K\x02K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRub.")
    with zipfile.ZipFile(tmp_path / "bad.pt", "w") as archive:
        archive.writestr("bad/data.pkl", buffer.getvalue())
        archive.writestr("bad/data/0", b"\x00" * 16)
        archive.writestr("bad/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("bad/code/__torch__.py",
                         'class M(Module):\n  __parameters__ = ["weight", ]\n  __buffers__ = []\n')
    assert_refused(tmp_path / "bad.pt", "past its storage")


# ----------------------------------------------------------------------------- Hugging Face


def hf_clip(activation, seed=0):
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, hidden_act=activation,
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=0),
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                           num_attention_heads=4, image_size=32, patch_size=8, hidden_act=activation),
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = transformers.CLIPModel(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm and projection values too
        for tensor in model.state_dict().values():
            if tensor.is_floating_point() and tensor.dim() == 1:
                tensor.add_(torch.randn_like(tensor) * 0.1)
    return model


def features(output):
    """get_*_features returns a tensor (transformers 4.x) or an output object (5.x)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def compare_with_hf(checkpoint, hf):
    model = build_model(checkpoint.state_dict, checkpoint.activation, **checkpoint.build_overrides)
    torch.manual_seed(2)
    pixels = torch.randn(3, 3, 32, 32)
    ids = token_ids(3)
    with torch.no_grad():
        image_diff = (model.encode_image(pixels) - features(hf.get_image_features(pixel_values=pixels))).abs().max()
        text_diff = (model.encode_text(ids) - features(hf.get_text_features(input_ids=ids))).abs().max()
    assert image_diff < 1e-5 and text_diff < 1e-5, (image_diff, text_diff)
    assert torch.equal(model.logit_scale.detach(), hf.logit_scale.detach())
    return float(image_diff), float(text_diff)


@pytest.fixture(scope="module", params=["quick_gelu", "gelu"])
def hf_model(request):
    return request.param, hf_clip(request.param)


@pytest.mark.parametrize("layout", ["safetensors", "bin", "sharded"])
def test_huggingface_folder(tmp_path, hf_model, layout):
    activation, hf = hf_model
    folder = tmp_path / "clip-hf"
    if layout == "sharded":
        hf.save_pretrained(folder, max_shard_size="5MB")
        assert (folder / "model.safetensors.index.json").exists()
    else:
        hf.save_pretrained(folder, safe_serialization=layout == "safetensors")
        if layout == "bin" and not (folder / "pytorch_model.bin").exists():
            # transformers 5 writes safetensors regardless; write the .bin as 4.x did.
            (folder / "model.safetensors").unlink()
            torch.save(hf.state_dict(), folder / "pytorch_model.bin")
    checkpoint = load_checkpoint(folder)
    assert checkpoint.source_format == "huggingface"
    assert checkpoint.activation == activation
    assert checkpoint.build_overrides == {"vision_heads": 4, "text_heads": 2}
    assert checkpoint.source_dtype == "float32"
    assert all(v.dtype == torch.float32 for v in checkpoint.state_dict.values())
    compare_with_hf(checkpoint, hf)


def test_huggingface_weights_file_with_config_beside_it(tmp_path, hf_model):
    _, hf = hf_model
    hf.save_pretrained(tmp_path)
    checkpoint = load_checkpoint(tmp_path / "model.safetensors")
    assert checkpoint.source_format == "huggingface"
    compare_with_hf(checkpoint, hf)
    (tmp_path / "config.json").unlink()
    assert_refused(tmp_path / "model.safetensors", "config.json")


def test_huggingface_conversion_layout(hf_model):
    _, hf = hf_model
    hf_state = {k: v.numpy() for k, v in hf.state_dict().items()}
    converted = convert_hf_clip(hf_state, hf.config.to_dict())
    state = {k: torch.from_numpy(v) for k, v in converted.state_dict.items()}
    hf_state = {k: torch.from_numpy(v) for k, v in hf_state.items()}
    q = hf_state["text_model.encoder.layers.1.self_attn.q_proj.weight"]
    v = hf_state["text_model.encoder.layers.1.self_attn.v_proj.bias"]
    assert torch.equal(state["transformer.resblocks.1.attn.in_proj_weight"][:64], q)
    assert torch.equal(state["transformer.resblocks.1.attn.in_proj_bias"][128:], v)
    assert torch.equal(state["visual.proj"], hf_state["visual_projection.weight"].T)
    assert torch.equal(state["text_projection"], hf_state["text_projection.weight"].T)
    assert torch.equal(state["visual.ln_pre.weight"], hf_state["vision_model.pre_layrnorm.weight"])
    assert torch.equal(state["visual.ln_post.bias"], hf_state["vision_model.post_layernorm.bias"])
    assert not any("position_ids" in k for k in state)
    assert set(state) == set(create_model(ClipConfig(
        embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
        vision_heads=4, context_length=77, vocab_size=49408, text_width=64, text_heads=2,
        text_layers=2)).state_dict())


def test_huggingface_fp16_folder(tmp_path, hf_model):
    _, hf = hf_model
    copy.deepcopy(hf).half().save_pretrained(tmp_path)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.source_dtype == "float16"
    reference = convert_hf_clip({k: v.half().numpy() for k, v in hf.state_dict().items()}, hf.config.to_dict())
    for key, value in reference.state_dict.items():
        assert torch.equal(checkpoint.state_dict[key], torch.from_numpy(value)), key


@pytest.mark.parametrize("change, named", [
    (lambda c: c["text_config"].update(hidden_act="gelu_new"), "gelu_new"),
    (lambda c: c["vision_config"].update(hidden_act="gelu" if c["text_config"]["hidden_act"] == "quick_gelu"
                                         else "quick_gelu"), "different activations"),
    (lambda c: c["vision_config"].update(layer_norm_eps=1e-6), "layer_norm_eps"),
    (lambda c: c["text_config"].update(eos_token_id=1), "eos_token_id"),
    (lambda c: c.update(model_type="siglip"), "siglip"),
], ids=["gelu_new", "mixed", "eps", "eos", "siglip"])
def test_huggingface_configs_that_cannot_convert(tmp_path, hf_model, change, named):
    _, hf = hf_model
    hf.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    change(config)
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert_refused(tmp_path, named)


def test_huggingface_single_tower_is_refused(hf_model):
    _, hf = hf_model
    state = {k: v.numpy() for k, v in hf.state_dict().items() if not k.startswith("vision_model.")}
    with pytest.raises(ConversionError, match="vision_model"):
        convert_hf_clip(state, hf.config.to_dict())


# ------------------------------------------------------------------- reference checkpoints


@pytest.mark.parametrize("name", ["openai-vit-tiny", "openai-rn-tiny"])
def test_reference_checkpoints_reproduce_openai_features(name):
    path = reference_checkpoint(name)
    expected = reference_expected(name)
    checkpoint = load_checkpoint(path)
    assert checkpoint.source_format == "state-dict"
    assert checkpoint.source_dtype == "float16"
    assert checkpoint.activation is None
    raw = torch.load(path, map_location="cpu", weights_only=True)
    for key, value in checkpoint.state_dict.items():
        assert torch.equal(value, raw[key].float() if raw[key].is_floating_point() else raw[key]), key
    model = build_model(checkpoint.state_dict, "quick_gelu")
    with torch.no_grad():
        image = model.encode_image(torch.from_numpy(expected["pixels"]))
        text = model.encode_text(torch.from_numpy(expected["token_ids"]).long())
    np.testing.assert_allclose(image.numpy(), expected["image_features"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(text.numpy(), expected["text_features"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(model.logit_scale.exp().item(), expected["logit_scale"], rtol=1e-6)


# --------------------------------------------------------------------------------- bad input


@pytest.fixture
def nothing_written(tmp_path):
    """The loader writes nothing: the folder's listing is the same before and after."""
    before = {}

    def snapshot():
        return sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))

    yield lambda: before.setdefault("listing", snapshot())
    if "listing" in before:
        assert snapshot() == before["listing"]


def test_missing_file(tmp_path):
    assert_refused(tmp_path / "nope.pt", "no such file")


def test_folder_that_is_not_a_model(tmp_path, nothing_written):
    (tmp_path / "notes.txt").write_text("hello")
    nothing_written()
    assert_refused(tmp_path, "no config.json")


def test_hf_folder_without_weights(tmp_path, hf_model, nothing_written):
    _, hf = hf_model
    hf.config.save_pretrained(tmp_path)
    nothing_written()
    assert_refused(tmp_path, "without PyTorch weights")


@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors", "torchscript", "sharded-hf"])
def test_truncated_checkpoints(tmp_path, vit, kind, nothing_written):
    from safetensors.torch import save_file

    path = tmp_path / "whole.pt"
    if kind == "zip":
        path.write_bytes(reference_checkpoint("openai-vit-tiny").read_bytes())
    elif kind == "legacy":
        torch.save(vit.state_dict(), path, _use_new_zipfile_serialization=False)
    elif kind == "safetensors":
        save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    elif kind == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trace(vit, 32).save(str(path))
    data = path.read_bytes() if path.exists() else b""
    if kind == "sharded-hf":
        hf = hf_clip("quick_gelu", seed=3)
        folder = tmp_path / "hf"
        hf.save_pretrained(folder, max_shard_size="5MB")
        shard = sorted(folder.glob("model-*.safetensors"))[0]
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
        nothing_written()
        assert_refused(folder, "truncated")
        return
    half = tmp_path / "half.pt"
    half.write_bytes(data[: len(data) // 2])
    nothing_written()
    assert_refused(half, "truncated")


def zip_bytes(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize("content, named", [
    (lambda: np.random.default_rng(0).bytes(4096), "not a checkpoint"),
    (lambda: b"", "empty"),
    (lambda: b"just some text\nnot weights\n", "text file"),
    (lambda: b'{"model_type": "clip"}', "JSON"),
    (lambda: (REFERENCE_IMAGES / "image0.png").read_bytes(), "PNG"),
    (lambda: pickle.dumps([1, 2, 3]), "not a PyTorch checkpoint"),
    (lambda: pickle.dumps([1, 2, 3], protocol=2), "not a PyTorch checkpoint"),
    (lambda: zip_bytes({"photos/a.txt": "hello"}), "zip archive but not a PyTorch checkpoint"),
], ids=["random", "empty", "text", "json", "png", "plain-pickle", "plain-pickle-p2", "zip"])
def test_files_that_are_not_checkpoints(tmp_path, content, named, nothing_written):
    path = tmp_path / "model.pt"
    path.write_bytes(content())
    nothing_written()
    assert_refused(path, named)


@pytest.mark.parametrize("obj, named", [
    ([torch.ones(2), torch.ones(3)], "holds a list"),
    ({"weights": [1, 2]}, "without tensors"),
    ({"foo.weight": torch.ones(3), "bar.bias": torch.zeros(3)}, "no CLIP weights"),
    ({"token_embedding.weight": torch.ones(10, 4)}, "incomplete"),
], ids=["list", "no-tensors", "no-clip-keys", "incomplete"])
def test_pickles_that_are_not_clip_state_dicts(tmp_path, obj, named, nothing_written):
    path = tmp_path / "thing.pt"
    torch.save(obj, path)
    nothing_written()
    assert_refused(path, named)


def test_clipdesk_model_package_folder(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    assert_refused(tmp_path, "model package")
