"""make_loader: batch contents, padding trimming, seeded order, targets, subsets, samplers."""

import numpy as np
import pytest
import torch
from tiny_mmsa import AUDIO_LEN, VISION_LEN, build_dataset
from torch.utils.data import DistributedSampler

from mugcore.data.batches import (
    clip_lengths,
    length_buckets,
    make_loader,
    move_batch,
    split_tensors,
    text_extent,
)
from mugcore.errors import DatasetError, UserError
from mugcore.models.multimodal_net import MultimodalNet, NetConfig


def _order(loader: torch.utils.data.DataLoader) -> list[int]:
    return [i for b in loader for i in b["index"].tolist()]


def test_batch_contents_and_trimming() -> None:
    ds = build_dataset(n=10)
    s = ds.splits["train"]
    batches = list(make_loader(ds, "train", batch_size=4, shuffle=False))
    assert [len(b["index"]) for b in batches] == [4, 4, 2]
    b = batches[0]
    assert set(b) == {"index", "text", "text_bert", "audio", "audio_lengths", "vision",
                      "vision_lengths", "y"}
    assert b["text_bert"].dtype == torch.long and b["audio_lengths"].dtype == torch.long
    assert b["index"].tolist() == [0, 1, 2, 3]
    n_tokens = b["text_bert"].shape[2]
    np.testing.assert_array_equal(b["text_bert"].numpy(), s["text_bert"][:4, :, :n_tokens])
    np.testing.assert_allclose(b["y"].numpy(), s["regression_labels"][:4])
    for m, full_len in (("audio", AUDIO_LEN), ("vision", VISION_LEN)):
        longest = int(s[f"{m}_lengths"][:4].max())
        assert longest < full_len
        assert b[m].shape[1] == longest
        np.testing.assert_array_equal(b[m].numpy(), s[m][:4, :longest])
    moved = move_batch(b, "cpu")
    assert set(moved) == set(b) and all(torch.equal(moved[k], b[k]) for k in b)


def test_aligned_data_gets_full_lengths() -> None:
    ds = build_dataset(n=5, aligned=True)
    b = next(iter(make_loader(ds, "test", batch_size=5, shuffle=False)))
    assert b["audio_lengths"].tolist() == [AUDIO_LEN] * 5
    assert b["vision_lengths"].tolist() == [VISION_LEN] * 5
    assert b["audio"].shape[1] == AUDIO_LEN


def test_trimming_does_not_change_network_outputs() -> None:
    ds = build_dataset(n=10)
    torch.manual_seed(0)
    net = MultimodalNet(config=NetConfig.from_dataset(ds, text_encoder="lstm")).eval()
    full = split_tensors(ds, "valid")  # untrimmed, whole split
    with torch.no_grad():
        expected = net(full).preds["multimodal"]
        got = torch.cat([net(b).preds["multimodal"]
                         for b in make_loader(ds, "valid", batch_size=3, shuffle=False)])
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_seeded_shuffling_is_reproducible() -> None:
    ds = build_dataset(n=10)
    a = make_loader(ds, "train", batch_size=3, shuffle=True, seed=7)
    b = make_loader(ds, "train", batch_size=3, shuffle=True, seed=7)
    c = make_loader(ds, "train", batch_size=3, shuffle=True, seed=8)
    first_a, first_b = _order(a), _order(b)
    assert first_a == first_b and sorted(first_a) == list(range(10))
    assert first_a != list(range(10)) and first_a != _order(c)
    assert _order(a) == _order(b)  # the second epoch agrees too
    assert _order(a) != first_a  # ... and differs from the first
    assert _order(make_loader(ds, "train", batch_size=3, shuffle=False)) == list(range(10))


def test_targets_and_indices() -> None:
    ds = build_dataset(n=10)
    targets = {"text": np.arange(10) * 1.0, "vision": -np.arange(10) * 1.0}
    loader = make_loader(ds, "train", batch_size=4, shuffle=True, seed=1, targets=targets,
                         indices=[9, 2, 5])
    batches = list(loader)
    assert sorted(i for b in batches for i in b["index"].tolist()) == [2, 5, 9]
    for b in batches:
        assert "y_audio" not in b
        np.testing.assert_array_equal(b["y_text"].numpy(), b["index"].numpy())
        np.testing.assert_array_equal(b["y_vision"].numpy(), -b["index"].numpy())
        np.testing.assert_allclose(
            b["y"].numpy(), ds.splits["train"]["regression_labels"][b["index"].numpy()]
        )
    with pytest.raises(UserError, match=r"targets\['audio'\] has 3 values but split train has 10"):
        make_loader(ds, "train", batch_size=4, shuffle=False, targets={"audio": [0, 1, 2]})
    with pytest.raises(UserError, match="unknown modality 'speech'"):
        make_loader(ds, "train", batch_size=4, shuffle=False, targets={"speech": np.zeros(10)})
    with pytest.raises(UserError, match=r"indices must lie in \[0, 10\)"):
        make_loader(ds, "train", batch_size=4, shuffle=False, indices=[10])
    with pytest.raises(UserError, match="split 'dev'"):
        make_loader(ds, "dev", batch_size=4, shuffle=False)


def test_distributed_sampler_splits_the_clips() -> None:
    ds = build_dataset(n=10)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(range(10), num_replicas=2, rank=rank, shuffle=True, seed=3)
        seen.append(_order(make_loader(ds, "train", batch_size=2, shuffle=False,
                                       sampler=sampler)))
    assert len(seen[0]) == len(seen[1]) == 5
    assert sorted(seen[0] + seen[1]) == list(range(10))
    with pytest.raises(UserError, match="shuffle=False with a sampler"):
        make_loader(ds, "train", batch_size=2, shuffle=True, sampler=sampler)


def test_lengths_beyond_padding_are_a_dataset_error() -> None:
    ds = build_dataset(n=4)
    ds.splits["test"]["vision_lengths"][2] = VISION_LEN + 1
    with pytest.raises(DatasetError, match=r"test/vision_lengths\[2\] = 8 is outside \[0, 7\]"):
        make_loader(ds, "test", batch_size=2, shuffle=False)


def test_text_extent_is_one_past_the_last_covered_token() -> None:
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    text_bert = torch.stack([mask * 7, mask, torch.zeros_like(mask)], dim=1).float()
    assert text_extent(text_bert).tolist() == [2, 3, 1, 5]


def test_text_is_cut_to_the_longest_real_text_of_the_batch() -> None:
    ds = build_dataset(n=10)
    s = ds.splits["train"]
    cut = 0
    for b in make_loader(ds, "train", batch_size=3, shuffle=True, seed=2):
        idx = b["index"].numpy()
        n = int(max(np.flatnonzero(row).max() + 1 for row in s["text_bert"][idx, 1]))
        cut += n < s["text_bert"].shape[2]
        assert b["text_bert"].shape == (len(idx), 3, n) and b["text"].shape[1] == n
        np.testing.assert_array_equal(b["text_bert"].numpy(), s["text_bert"][idx, :, :n])
        np.testing.assert_array_equal(b["text"].numpy(), s["text"][idx, :n])
    assert cut, "no batch had text padding to cut: the test data is too uniform"


def test_length_buckets_group_like_lengths_and_keep_every_clip() -> None:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 50, (103,), generator=g)
    order = torch.randperm(103, generator=g)
    out = length_buckets(order, lengths, 8, g, pool=100)  # one pool holds every clip
    assert sorted(out.tolist()) == list(range(103))
    full = [out[i:i + 8] for i in range(0, 96, 8)]
    spans = [(int(lengths[b].min()), int(lengths[b].max())) for b in full]
    ranked = sorted(spans)
    assert all(hi <= lo for (_, hi), (lo, _) in zip(ranked, ranked[1:], strict=False))
    assert spans != ranked  # the batches themselves are shuffled
    tail = out[96:]  # 103 % 8 = 7 clips: the short batch stays last (the longest ones here)
    assert len(tail) == 7 and int(lengths[tail].min()) >= ranked[-1][1]
    padded = sum(int(lengths[b].max()) * len(b) for b in full)
    random_padded = sum(int(lengths[order[i:i + 8]].max()) * 8 for i in range(0, 96, 8))
    assert padded < 0.7 * random_padded
    again = torch.Generator().manual_seed(0)
    lengths2 = torch.randint(1, 50, (103,), generator=again)
    assert length_buckets(torch.randperm(103, generator=again), lengths2, 8, again,
                          pool=100).tolist() == out.tolist()


def test_bucketed_loader_is_seeded_and_visits_every_clip() -> None:
    ds = build_dataset(n=10)
    a = make_loader(ds, "train", batch_size=3, shuffle=True, seed=4, bucket_by_length=True)
    b = make_loader(ds, "train", batch_size=3, shuffle=True, seed=4, bucket_by_length=True)
    first = _order(a)
    assert sorted(first) == list(range(10)) and first == _order(b)
    assert _order(a) != first  # a new order each epoch
    sub = make_loader(ds, "train", batch_size=2, shuffle=True, seed=4, bucket_by_length=True,
                      indices=[1, 3, 5, 7])
    assert sorted(_order(sub)) == [1, 3, 5, 7]
    assert clip_lengths(ds, "train").tolist() == text_extent(
        torch.as_tensor(ds.splits["train"]["text_bert"])).tolist()
    with pytest.raises(UserError, match="bucket_by_length orders shuffled batches"):
        make_loader(ds, "train", batch_size=3, shuffle=False, bucket_by_length=True)


def test_text_states_ride_along_with_their_clips() -> None:
    ds = build_dataset(n=10)
    states = torch.arange(20.0).view(10, 2)
    for b in make_loader(ds, "valid", batch_size=4, shuffle=True, text_states=states):
        torch.testing.assert_close(b["text_states"], states[b["index"]])
    with pytest.raises(UserError, match="text_states has 3 rows but split valid has 10"):
        make_loader(ds, "valid", batch_size=4, shuffle=False, text_states=states[:3])

