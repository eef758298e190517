"""Trainer(labeled_batch_size=N): N labelled rows added to every batch, cycling through the labels."""

import math

import pytest
import torch
from torch import nn

from ddvi.train import Trainer

N, N_LABELED, BATCH = 200, 10, 32
PER_EPOCH = math.ceil(N / BATCH)


class Recorder(nn.Module):
    """A fake method: records the row ids (column 0 of x) and ctx.labels of every batch; trains a
    tiny parameter on the batch so that its state depends on every batch it saw."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))
        self.batches: list[torch.Tensor] = []
        self.labels: list[torch.Tensor | None] = []
        self.epochs: list[int] = []

    def configure_optimizer(self, lr):
        return torch.optim.Adam(self.parameters(), lr=lr)

    def training_step(self, x, optimizer, ctx):
        self.batches.append(x[:, 0].long().clone())
        self.labels.append(None if ctx.labels is None else ctx.labels.clone())
        self.epochs.append(ctx.epoch)
        loss = ((x[:, 1:4].mean(0) - self.w) ** 2).sum() + 1e-3 * x[:, 0].mean() * self.w.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}


def toy_data(n=N, n_labeled=N_LABELED, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([torch.arange(n, dtype=torch.float32)[:, None], torch.randn(n, 3, generator=g)], 1)
    y = torch.full((n,), -1, dtype=torch.long)
    labeled = torch.randperm(n, generator=g)[:n_labeled]
    y[labeled] = torch.arange(n_labeled) % 3
    return x, y, labeled


def run(labeled_batch_size, y=True, epochs=2, seed=0, **kw):
    x, labels, labeled = toy_data()
    m = Recorder()
    Trainer(m, epochs=epochs, batch_size=BATCH, lr=1e-2, seed=seed, verbose=False,
            labeled_batch_size=labeled_batch_size, **kw).fit(x, y=labels if y else None)
    return m, labels, labeled


def test_every_batch_has_labelled_rows_and_labels_match():
    m, y, labeled = run(4)
    assert len(m.batches) == 2 * PER_EPOCH
    for ids, lab in zip(m.batches, m.labels):
        assert lab is not None and torch.equal(lab, y[ids])
        assert int((lab >= 0).sum()) >= 4
        # the last 4 rows are the added labelled ones
        assert bool((y[ids[-4:]] >= 0).all())
    sizes = [len(b) for b in m.batches[:PER_EPOCH]]
    assert sizes == [BATCH + 4] * (PER_EPOCH - 1) + [N - BATCH * (PER_EPOCH - 1) + 4]


def test_labelled_rows_cycle_through_all_labelled_indices():
    m, _, labeled = run(4, epochs=1)
    extra = torch.cat([b[-4:] for b in m.batches])  # PER_EPOCH * 4 = 28 rows
    assert len(extra) == PER_EPOCH * 4 == 28
    want = sorted(labeled.tolist())
    # whole reshuffled copies of the labelled set, back to back
    assert sorted(extra[:10].tolist()) == want
    assert sorted(extra[10:20].tolist()) == want
    tail = extra[20:].tolist()
    assert len(set(tail)) == len(tail) and set(tail) <= set(want)
    assert extra[:10].tolist() != extra[10:20].tolist()  # reshuffled, not repeated


def test_same_seed_same_batches_other_seed_differs():
    a, _, _ = run(4, seed=3)
    b, _, _ = run(4, seed=3)
    c, _, _ = run(4, seed=4)
    assert all(torch.equal(u, v) for u, v in zip(a.batches, b.batches))
    assert torch.equal(a.w, b.w)
    assert not all(torch.equal(u, v) for u, v in zip(a.batches, c.batches))


def test_zero_keeps_the_plain_batches():
    plain, _, _ = run(0, y=False)
    zero, y, _ = run(0)
    assert len(plain.batches) == len(zero.batches) == 2 * PER_EPOCH
    assert all(torch.equal(u, v) for u, v in zip(plain.batches, zero.batches))
    assert torch.equal(plain.w, zero.w)
    assert all(lab is None for lab in plain.labels)
    assert all(torch.equal(lab, y[ids]) for ids, lab in zip(zero.batches, zero.labels))
    # the batches are a permutation of all rows each epoch
    first = torch.cat(zero.batches[:PER_EPOCH])
    assert sorted(first.tolist()) == list(range(N))
    # with labels added, the unlabelled part of the first epoch is still the same permutation
    extra, _, _ = run(4)
    for u, v in zip(plain.batches[:PER_EPOCH], extra.batches[:PER_EPOCH]):
        assert torch.equal(u, v[:-4])


def test_no_labels_in_y_adds_nothing():
    x, _, _ = toy_data()
    m = Recorder()
    Trainer(m, epochs=1, batch_size=BATCH, verbose=False, labeled_batch_size=4).fit(
        x, y=torch.full((N,), -1, dtype=torch.long))
    assert sum(len(b) for b in m.batches) == N


def test_negative_is_an_error():
    with pytest.raises(ValueError, match="labeled_batch_size"):
        Trainer(Recorder(), epochs=1, labeled_batch_size=-1)


def test_resume_is_bit_exact(tmp_path):
    kw = {"epochs": 4, "checkpoint_every": 1}
    straight, _, _ = run(4, run_dir=tmp_path / "a", **kw)

    x, y, _ = toy_data()
    interrupted = Recorder()
    step = interrupted.training_step

    def stop_at_epoch_two(batch, opt, ctx):
        if ctx.epoch == 2:
            raise KeyboardInterrupt
        return step(batch, opt, ctx)

    interrupted.training_step = stop_at_epoch_two
    with pytest.raises(KeyboardInterrupt):
        Trainer(interrupted, epochs=4, batch_size=BATCH, lr=1e-2, verbose=False, run_dir=tmp_path / "b",
                labeled_batch_size=4).fit(x, y=y)

    resumed = Recorder()
    with torch.no_grad():
        resumed.w.fill_(7.0)  # everything must come from the checkpoint
    trainer = Trainer(resumed, epochs=4, batch_size=BATCH, lr=1e-2, verbose=False, run_dir=tmp_path / "b",
                      labeled_batch_size=4)
    trainer.fit(x, resume=True, y=y)
    assert trainer.epoch == 4 and len(trainer.history) == 4
    assert resumed.epochs[0] == 2 and len(resumed.batches) == 2 * PER_EPOCH
    later = straight.batches[2 * PER_EPOCH:]
    assert all(torch.equal(u, v) for u, v in zip(later, resumed.batches))
    assert torch.equal(resumed.w, straight.w)
