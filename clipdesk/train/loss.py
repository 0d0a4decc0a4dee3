"""CLIP's symmetric contrastive loss (Radford et al., 2021), over one or many processes.

For a batch of N (image, text) pairs the logits are scale * image @ text.T; the loss is the mean of the
cross-entropies over rows (image → text) and over columns (text → image), the true pairs on the
diagonal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clipdesk.train.distributed import Processes, gather_rows


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                     all_image: torch.Tensor | None = None, all_text: torch.Tensor | None = None,
                     offset: int = 0) -> torch.Tensor:
    """Loss summed over the local rows `image`/`text` (L2-normalised), scored against the whole batch
    `all_image`/`all_text` (default: the local rows), where the local rows start at `offset`.

    A sum rather than a mean so that shares of different sizes add up; an empty share gives 0 while
    staying connected to the gathered batch, whose backward every process must take part in.
    """
    all_image = image if all_image is None else all_image
    all_text = text if all_text is None else all_text
    labels = torch.arange(image.shape[0], device=image.device) + offset
    image_to_text = F.cross_entropy(logit_scale * image @ all_text.t(), labels, reduction="sum")
    text_to_image = F.cross_entropy(logit_scale * text @ all_image.t(), labels, reduction="sum")
    return (image_to_text + text_to_image) / 2


def batch_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, counts: list[int],
               processes: Processes) -> tuple[torch.Tensor, torch.Tensor]:
    """(what this process back-propagates, the loss of the global batch, detached).

    `counts` are the rows of every process's share. The back-propagated value is this process's
    summed loss divided by the global batch size and multiplied by the number of processes, so that
    averaging the parameter gradients over processes gives the gradient of the global mean loss.
    """
    total = max(1, sum(counts))  # every image of the batch unreadable: loss and gradients 0
    offset = sum(counts[: processes.rank])
    all_image = gather_rows(image, counts, processes)
    all_text = gather_rows(text, counts, processes)
    local = contrastive_loss(image, text, logit_scale, all_image, all_text, offset)
    to_backpropagate = local * (processes.world_size / total)
    summed = local.detach().clone()
    if processes.enabled:
        torch.distributed.all_reduce(summed)
    return to_backpropagate, summed / total
