#!/usr/bin/env python3
"""Export a CLIP checkpoint (OpenAI, OpenCLIP, Hugging Face or clipdesk's own) as a model package.

    python export/export_model.py CHECKPOINT OUT_DIR [--name NAME] [--precision fp32|fp16|int8]

The same code runs behind `clipdesk model export`; after writing, both ONNX files are run in ONNX
Runtime on real inputs and compared with PyTorch (the max abs diff is printed).
"""

import sys

from clipdesk.cli import main

if __name__ == "__main__":
    sys.exit(main(["model", "export", *sys.argv[1:]]))
