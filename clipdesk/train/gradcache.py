"""One training step's gradients, for the whole batch at once or by gradient caching.

Gradient caching (Gao et al., 2021) makes the contrastive batch independent of memory: embed the batch
chunk by chunk without keeping the graph, compute the full-batch loss and its gradient with respect to
the embeddings, then run each chunk forward again with the graph and back-propagate the cached
gradient into the weights. Only one chunk's activations are alive at a time; the price is a second
forward pass. CLIP has no dropout, so the second pass reproduces the first exactly: for ViT image towers
the gradients equal the whole-batch ones. A ResNet tower's BatchNorm normalises each chunk with that
chunk's statistics (as data-parallel training does per device), so there the chunk size matters a little.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from clipdesk.model.clip import CLIP
from clipdesk.train.distributed import Processes, row_counts
from clipdesk.train.loss import batch_loss

Prepare = Callable[[torch.Tensor], torch.Tensor]  # a slice of the stored batch → model input


def _identity(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def embed_images(model: CLIP, pixels: torch.Tensor) -> torch.Tensor:
    # Normalised in fp32: under bf16 autocast the towers' output is bf16, too coarse for the loss.
    return F.normalize(model.encode_image(pixels).float(), dim=-1)


def embed_texts(model: CLIP, ids: torch.Tensor) -> torch.Tensor:
    return F.normalize(model.encode_text(ids).float(), dim=-1)


def backward_whole_batch(model: CLIP, pixels: torch.Tensor, ids: torch.Tensor, processes: Processes = Processes(),
                         autocast=contextlib.nullcontext, prepare_pixels: Prepare = _identity,
                         prepare_ids: Prepare = _identity) -> torch.Tensor:
    """Accumulate the gradients of the global batch's loss into `model`; returns that loss."""
    counts = row_counts(len(ids), processes)
    with autocast():
        image = embed_images(model, prepare_pixels(pixels))
        text = embed_texts(model, prepare_ids(ids))
    to_backpropagate, loss = batch_loss(image, text, model.logit_scale.exp(), counts, processes)
    to_backpropagate.backward()
    return loss


def backward_cached(model: CLIP, pixels: torch.Tensor, ids: torch.Tensor, chunk_size: int,
                    processes: Processes = Processes(), autocast=contextlib.nullcontext,
                    prepare_pixels: Prepare = _identity, prepare_ids: Prepare = _identity) -> torch.Tensor:
    """The same gradients as `backward_whole_batch`, with at most `chunk_size` rows in the graph."""
    counts = row_counts(len(ids), processes)
    pixel_chunks, id_chunks = pixels.split(chunk_size), ids.split(chunk_size)
    empty = [torch.zeros(0, model.config.embed_dim, device=model.logit_scale.device)]  # an empty share
    with torch.no_grad(), autocast():
        image = torch.cat([embed_images(model, prepare_pixels(p)) for p in pixel_chunks] or empty)
        text = torch.cat([embed_texts(model, prepare_ids(i)) for i in id_chunks] or empty)
    image.requires_grad_(True)
    text.requires_grad_(True)
    # Full-batch loss on the cached embeddings: gives d loss / d embeddings, and logit_scale's gradient.
    to_backpropagate, loss = batch_loss(image, text, model.logit_scale.exp(), counts, processes)
    to_backpropagate.backward()
    for chunk, grad in zip(pixel_chunks, image.grad.split(chunk_size)):
        with autocast():
            embedded = embed_images(model, prepare_pixels(chunk))
        embedded.backward(grad)
    for chunk, grad in zip(id_chunks, text.grad.split(chunk_size)):
        with autocast():
            embedded = embed_texts(model, prepare_ids(chunk))
        embedded.backward(grad)
    return loss


def backward_step(model: CLIP, pixels: torch.Tensor, ids: torch.Tensor, chunk_size: int = 0, **kwargs) -> torch.Tensor:
    """Gradient caching when `chunk_size` is set and smaller than the share, else the whole batch."""
    if chunk_size and chunk_size < len(ids):
        return backward_cached(model, pixels, ids, chunk_size, **kwargs)
    return backward_whole_batch(model, pixels, ids, **kwargs)
