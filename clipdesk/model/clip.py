"""CLIP: an image tower and a text tower projected into one embedding space.

Attribute names and shapes equal OpenAI's, so their released state dicts load with strict=True.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from clipdesk.checkpoint.architecture import ClipConfig
from clipdesk.model.modified_resnet import ModifiedResNet
from clipdesk.model.transformer import LayerNorm, Transformer, causal_mask
from clipdesk.model.vision_transformer import VisionTransformer


class CLIP(nn.Module):
    def __init__(self, config: ClipConfig):
        super().__init__()
        self.config = config
        self.context_length = config.context_length
        self.vocab_size = config.vocab_size
        if config.is_vit:
            self.visual = VisionTransformer(
                config.image_resolution, config.vision_patch_size, config.vision_width,
                config.vision_layers, config.vision_heads, config.embed_dim, config.activation,
            )
        else:
            self.visual = ModifiedResNet(
                config.vision_layers, config.embed_dim, config.vision_heads,
                config.image_resolution, config.vision_width,
            )
        self.transformer = Transformer(
            config.text_width, config.text_layers, config.text_heads, config.activation
        )
        self.token_embedding = nn.Embedding(config.vocab_size, config.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.text_width))
        self.ln_final = LayerNorm(config.text_width)
        self.text_projection = nn.Parameter(torch.empty(config.text_width, config.embed_dim))
        # CLIP's learned temperature starts at 1/0.07.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        # Not persistent: OpenAI's checkpoints carry no mask, and it follows from context_length.
        self.register_buffer("attn_mask", causal_mask(config.context_length), persistent=False)
        self.initialize_parameters()

    @torch.no_grad()
    def initialize_parameters(self) -> None:
        """OpenAI's initialisation for training from scratch."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)

        if isinstance(self.visual, ModifiedResNet):
            pool = self.visual.attnpool
            std = pool.c_proj.in_features ** -0.5
            for linear in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj):
                nn.init.normal_(linear.weight, std=std)
            # Zero the last BatchNorm scale of each block: every residual branch starts as identity.
            for stage in (self.visual.layer1, self.visual.layer2, self.visual.layer3, self.visual.layer4):
                for block in stage:
                    nn.init.zeros_(block.bn3.weight)

        # Only the text Transformer gets these scaled inits in OpenAI's code (the ViT keeps
        # PyTorch's defaults); residual projections shrink with depth to keep the stream's variance.
        width, layers = self.transformer.width, self.transformer.layers
        proj_std = width ** -0.5 * (2 * layers) ** -0.5
        attn_std = width ** -0.5
        fc_std = (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    @property
    def dtype(self) -> torch.dtype:
        return self.token_embedding.weight.dtype

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) normalised pixels → (N, embed_dim) un-normalised image features."""
        return self.visual(pixels.to(self.dtype))

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(N, context_length) token ids → (N, embed_dim) un-normalised text features.

        Pooled at the end-of-text token, found as the largest id in each row (it is the last
        entry of CLIP's vocabulary), as OpenAI does.
        """
        length = token_ids.shape[1]
        x = self.token_embedding(token_ids) + self.positional_embedding[:length]
        x = self.transformer(x, self.attn_mask[:length, :length])
        x = self.ln_final(x)
        eot = x[torch.arange(x.shape[0], device=x.device), token_ids.argmax(dim=-1)]
        return eot @ self.text_projection

    def forward(self, pixels: torch.Tensor, token_ids: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L2-normalised image and text features and the temperature exp(logit_scale): what a
        contrastive loss needs (logits = scale * image @ text.T)."""
        image = nn.functional.normalize(self.encode_image(pixels), dim=-1)
        text = nn.functional.normalize(self.encode_text(token_ids), dim=-1)
        return image, text, self.logit_scale.exp()
