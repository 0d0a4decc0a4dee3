"""Data-parallel training on 2 gloo processes equals one process on the same global batch."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from clipdesk.train.distributed import Processes, average_gradients
from clipdesk.train.gradcache import backward_step
from test_train_loss import random_batch
from test_train_support import micro_model

ROWS = 8
# name: (rows of rank 0, rows of rank 1, chunk size); shares may shrink when images are unreadable.
CASES = {
    "even": ((0, 4), (4, 8), 0),
    "even, gradient caching": ((0, 4), (4, 8), 3),
    "uneven": ((0, 5), (5, 8), 0),
    "uneven, gradient caching": ((0, 5), (5, 8), 2),
    "one empty share": ((0, 6), (6, 6), 4),
}


def _worker(rank: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2)
    try:
        processes = Processes(rank=rank, world_size=2, local_rank=rank)
        pixels, ids = random_batch(ROWS)
        results = {}
        for name, (first, second, chunk) in CASES.items():
            start, stop = (first, second)[rank]
            model = micro_model()
            model.zero_grad(set_to_none=True)
            loss = backward_step(model, pixels[start:stop], ids[start:stop], chunk, processes=processes)
            average_gradients(model.parameters(), processes)
            results[name] = (float(loss), {n: p.grad.clone() for n, p in model.named_parameters()})
        torch.save(results, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(str(folder),), nprocs=2, join=True)
    return [torch.load(folder / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_match_one_process_on_the_global_batch(two_process_results, case):
    (first, second, _) = CASES[case]
    pixels, ids = random_batch(ROWS)
    rows = slice(first[0], second[1])  # the global batch: every share's rows
    reference = micro_model()
    expected_loss = float(backward_step(reference, pixels[rows], ids[rows]))
    for rank_results in two_process_results:
        loss, grads = rank_results[case]
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        for name, p in reference.named_parameters():
            scale = p.grad.abs().max().item() + 1e-12
            assert (grads[name] - p.grad).abs().max().item() <= 1e-4 * scale, (case, name)
