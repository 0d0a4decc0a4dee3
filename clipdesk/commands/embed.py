"""`clipdesk embed`: L2-normalised image and text embeddings written to an .npz file."""

from __future__ import annotations

import os
from pathlib import Path

from clipdesk.commands.common import DEVICE_CHOICES, add_model_option
from clipdesk.errors import ClipdeskError


def cmd_embed(args) -> int:
    import numpy as np

    from clipdesk.runtime.encoders import load_model

    if not args.image and not args.text:
        raise ClipdeskError("nothing to embed: give at least one --image PATH or --text STRING")
    model = load_model(args.model, device=args.device)
    dim = model.package.manifest.embed_dim
    images = model.image.encode_files(args.image) if args.image else np.zeros((0, dim), np.float32)
    texts = model.text.encode(args.text) if args.text else np.zeros((0, dim), np.float32)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    with open(temporary, "wb") as handle:  # a file handle keeps numpy from appending ".npz"
        np.savez(handle, image=images, text=texts)
    os.replace(temporary, out)
    print(f"wrote {out}: image {images.shape}, text {texts.shape} ({model.name})")
    return 0


def register(commands) -> None:
    embed = commands.add_parser("embed", help="write L2-normalised image and text embeddings to an .npz file")
    add_model_option(embed)
    embed.add_argument("--image", action="append", default=[], metavar="PATH", help="an image file (repeatable)")
    embed.add_argument("--text", action="append", default=[], metavar="STR", help="a text (repeatable)")
    embed.add_argument("--out", required=True, metavar="FILE.npz")
    embed.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    embed.set_defaults(handler=cmd_embed)
