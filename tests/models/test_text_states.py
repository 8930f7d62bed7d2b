"""A frozen BERT's [CLS] states: computed once per dataset split, equal to running BERT on
every batch, and used by the network in place of BERT. Loads all-MiniLM-L6-v2 (6 layers)."""

import pytest
import torch
from tiny_mmsa import build_dataset, pad_text

from mugcore.data.batches import make_loader
from mugcore.data.schema import MMSADataset
from mugcore.models.multimodal_net import MultimodalNet, NetConfig
from mugcore.models.text_states import frozen_text_states


def _net(ds: MMSADataset, **overrides: object) -> MultimodalNet:
    torch.manual_seed(0)
    options = {"text_encoder": "bert", "finetune_bert": False, "text_dim": 5, "dropout": 0.0,
               **overrides}
    config = NetConfig.from_dataset(ds, **options)
    return MultimodalNet(config=config)


def _count_bert_calls(net: MultimodalNet) -> list[int]:
    calls = [0]
    net.encoders["text"].bert.register_forward_hook(
        lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_states_are_bert_cls_states_computed_once() -> None:
    ds = pad_text(build_dataset(n=7), width=30)
    net = _net(ds)
    with torch.no_grad():  # BERT on the clips as stored, padding and all
        want = net.encoders["text"].cls_state(torch.as_tensor(ds.splits["train"]["text_bert"]))
    calls = _count_bert_calls(net)
    states = frozen_text_states(net, ds, "train")
    assert states is not None and states.shape == (7, net.encoders["text"].proj.in_features)
    assert calls[0] == 1  # the 7 clips fit one batch
    assert frozen_text_states(net, ds, "train") is states and calls[0] == 1  # cached
    torch.testing.assert_close(states, want, atol=1e-5, rtol=0)
    other = pad_text(build_dataset(n=7, seed=1), width=30)  # another dataset: its own states
    assert not torch.allclose(frozen_text_states(net, other, "train"), states)
    assert calls[0] == 2


def test_the_net_on_cached_states_matches_the_net_running_bert() -> None:
    ds = build_dataset(n=6)
    net = _net(ds).train()  # a frozen BERT keeps dropout off even in training mode
    loader = make_loader(ds, "test", batch_size=6, shuffle=False)
    cached = make_loader(ds, "test", batch_size=6, shuffle=False,
                         text_states=frozen_text_states(net, ds, "test"))
    live, fast = next(iter(loader)), next(iter(cached))
    calls = _count_bert_calls(net)
    out = net(fast)
    assert calls[0] == 0  # BERT does not run on a batch that carries its states
    torch.testing.assert_close(out.preds["multimodal"], net(live).preds["multimodal"],
                               atol=1e-5, rtol=0)
    out.preds["multimodal"].sum().backward()
    assert net.encoders["text"].proj.weight.grad is not None


@pytest.mark.parametrize("overrides", [{"finetune_bert": True}, {"text_encoder": "lstm"}])
def test_other_text_encoders_get_no_states(overrides: dict[str, object]) -> None:
    ds = build_dataset(n=3)
    net = _net(ds, **overrides)
    assert frozen_text_states(net, ds, "train") is None
    batch = next(iter(make_loader(ds, "train", batch_size=3, shuffle=False,
                                  text_states=torch.zeros(3, 384))))
    with pytest.raises(AssertionError, match="frozen BERT only"):
        net(batch)
