"""Contrastive loss, gradient caching, optimiser groups and the learning-rate schedule."""

import math

import pytest
import torch
import torch.nn.functional as F

from clipdesk.train.gradcache import backward_cached, backward_whole_batch
from clipdesk.train.loss import contrastive_loss
from clipdesk.train.schedule import (
    MAX_LOGIT_SCALE, clamp_logit_scale, learning_rate, make_optimizer, takes_weight_decay,
)
from test_train_support import micro_config, micro_model


def random_batch(rows, seed=0):
    config = micro_config()
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randn(rows, 3, config.image_resolution, config.image_resolution, generator=generator)
    ids = torch.randint(1, 49406, (rows, config.context_length), generator=generator)
    lengths = torch.randint(2, config.context_length, (rows,), generator=generator)
    ids[torch.arange(config.context_length)[None, :] >= lengths[:, None]] = 0
    ids[torch.arange(rows), lengths - 1] = 49407  # end of text: the largest id, where the text is pooled
    return pixels, ids


def gradients(model):
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_loss_is_the_symmetric_cross_entropy_of_the_paper():
    generator = torch.Generator().manual_seed(1)
    image = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    text = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    scale = torch.tensor(10.0)
    logits = scale * image @ text.t()
    expected = -(logits.log_softmax(1).diagonal().mean() + logits.log_softmax(0).diagonal().mean()) / 2
    assert contrastive_loss(image, text, scale) / 6 == pytest.approx(float(expected), rel=1e-6)
    # Local rows 2..3 scored against the whole batch: their share of the full sum.
    per_row = -(logits.log_softmax(1).diagonal() + logits.log_softmax(0).diagonal()) / 2
    part = contrastive_loss(image[2:4], text[2:4], scale, image, text, offset=2)
    assert part == pytest.approx(float(per_row[2:4].sum()), rel=1e-6)


@pytest.mark.parametrize("chunk", [3, 10])  # 3: a last chunk of 1 row; 10: one chunk
def test_gradient_caching_gives_the_full_batch_gradients(chunk):
    pixels, ids = random_batch(10)
    reference = micro_model()
    with torch.no_grad():
        reference.logit_scale.fill_(math.log(20))  # sharper logits than at init: larger, more varied gradients
    cached = micro_model()
    cached.load_state_dict(reference.state_dict())
    loss = backward_whole_batch(reference, pixels, ids)
    cached_loss = backward_cached(cached, pixels, ids, chunk)
    assert float(cached_loss) == pytest.approx(float(loss), rel=1e-6)
    expected, got = gradients(reference), gradients(cached)
    assert expected["logit_scale"].abs() > 0
    for name, grad in expected.items():
        scale = grad.abs().max().item() + 1e-12
        assert (got[name] - grad).abs().max().item() <= 1e-4 * scale, name


def test_gradient_caching_under_bf16_autocast_stays_close():
    pixels, ids = random_batch(8, seed=3)
    reference, cached = micro_model(), micro_model()
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    backward_whole_batch(reference, pixels, ids, autocast=autocast)
    backward_cached(cached, pixels, ids, 3, autocast=autocast)
    expected, got = gradients(reference), gradients(cached)
    cosines = [F.cosine_similarity(expected[n].flatten(), got[n].flatten(), dim=0).item() for n in expected
               if expected[n].abs().max() > 0]
    assert min(cosines) > 0.99


def test_weight_decay_spares_gains_biases_embeddings_and_the_temperature():
    model = micro_model()
    names = dict(model.named_parameters())
    spared = {n for n, p in names.items() if not takes_weight_decay(n, p)}
    for name in ("logit_scale", "token_embedding.weight", "positional_embedding", "visual.class_embedding",
                 "visual.positional_embedding", "ln_final.weight", "ln_final.bias", "visual.ln_post.weight",
                 "transformer.resblocks.0.attn.in_proj_bias", "transformer.resblocks.0.mlp.c_fc.bias"):
        assert name in spared, name
    for name in ("visual.conv1.weight", "visual.proj", "text_projection", "transformer.resblocks.0.attn.in_proj_weight",
                 "transformer.resblocks.0.mlp.c_fc.weight", "visual.transformer.resblocks.0.attn.out_proj.weight"):
        assert name not in spared, name
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.2)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.2 and plain["weight_decay"] == 0.0
    assert {id(p) for p in plain["params"]} == {id(names[n]) for n in spared}
    assert len(decayed["params"]) + len(plain["params"]) == len(names)


def test_warmup_then_cosine_and_the_temperature_clamp():
    rates = [learning_rate(step, 1.0, warmup=4, total=14) for step in range(15)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert rates[4] == 1.0 and rates[9] == pytest.approx(0.5) and rates[14] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    model = micro_model()
    with torch.no_grad():
        model.logit_scale.fill_(7.0)
    clamp_logit_scale(model)
    assert model.logit_scale.item() == pytest.approx(MAX_LOGIT_SCALE)
    assert math.exp(MAX_LOGIT_SCALE) == pytest.approx(100)
