"""Contrastive training of CLIP models (train side: torch).

`clipdesk train ...`, `python -m clipdesk.train ...` and `torchrun -m clipdesk.train ...` all run
`trainer.run`. This package's __init__ imports nothing heavy: the CLI builds its parser from
`options` without loading torch.
"""
