"""Shapes, padding invariance, configuration checks and gradient flow of the networks."""

import pytest
import torch
from tiny_mmsa import AUDIO_DIM, TEXT_DIM, VISION_DIM, build_dataset
from torch.nn.utils.rnn import pack_padded_sequence

from mugcore.data.batches import make_loader
from mugcore.errors import UserError
from mugcore.models.fusion import FusionNetwork
from mugcore.models.multimodal_net import MultimodalNet, NetConfig, NetOutput
from mugcore.models.predictor import Predictor
from mugcore.models.sequence_encoder import SequenceEncoder
from mugcore.models.text_encoder import LSTMTextEncoder


def _encoder(**kw: int | float) -> SequenceEncoder:
    torch.manual_seed(0)
    return SequenceEncoder(in_dim=4, hidden=8, out_dim=3, **kw).eval()


@pytest.mark.parametrize(("num_layers", "centre"), [(1, False), (2, False), (1, True)])
def test_padding_does_not_change_output(num_layers: int, centre: bool) -> None:
    enc = _encoder(num_layers=num_layers, dropout=0.2, centre=centre)
    x = torch.randn(5, 9, 4)
    lengths = torch.tensor([9, 1, 4, 7, 2])
    real = torch.arange(9)[None, :] < lengths[:, None]  # (B, L)
    clean = x * real[..., None]  # zero padding
    garbage = torch.where(real[..., None], x, torch.randn(5, 9, 4) * 100)
    longer = torch.cat([garbage, torch.randn(5, 6, 4) * 100], dim=1)  # (B, 15, 4)
    out = enc(clean, lengths)
    assert out.shape == (5, 3)
    torch.testing.assert_close(enc(garbage, lengths), out, atol=1e-6, rtol=0)
    torch.testing.assert_close(enc(longer, lengths), out, atol=1e-6, rtol=0)
    # A clip alone, cut to its real length, reads the same as inside the padded batch.
    for i in range(5):
        alone = enc(x[i : i + 1, : lengths[i]], lengths[i : i + 1])
        torch.testing.assert_close(alone, out[i : i + 1], atol=1e-6, rtol=0)
    # Sanity: the padding would matter without the lengths.
    assert not torch.allclose(enc(garbage), enc(clean), atol=1e-3)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_padded_lstm_reads_what_a_packed_one_computes(num_layers: int) -> None:
    """The encoder runs the LSTM over padding and reads each clip's last real state; a packed
    LSTM skips the padding. Outputs and gradients must agree."""
    enc = _encoder(num_layers=num_layers)
    x = torch.randn(6, 40, 4)
    lengths = torch.tensor([40, 1, 13, 27, 5, 39])

    def packed_reference() -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = enc.lstm(packed)
        return enc.proj(h_n[-1])

    got, want = enc(x, lengths), packed_reference()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    grads = []
    for out in (got, want):
        enc.zero_grad()
        out.pow(2).sum().backward()
        grads.append([p.grad.clone() for p in enc.lstm.parameters()])
    for g, w in zip(*grads, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_centring_removes_a_clip_offset_from_the_lstm_and_keeps_it_as_the_level() -> None:
    enc = _encoder(centre=True)
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 3, 5])
    offset = torch.randn(3, 1, 4) * 10  # a speaker's baseline, the same on every frame
    hidden = enc.proj.in_features - 4
    with torch.no_grad():
        enc.proj.weight[:, hidden:] = 0  # read the LSTM state only
        torch.testing.assert_close(enc(x + offset, lengths), enc(x, lengths), atol=1e-5, rtol=0)
        enc.proj.weight[:, :hidden] = 0  # read the level only: it moves with the offset
        enc.proj.weight[:, hidden:] = 1
        assert not torch.allclose(enc(x + offset, lengths), enc(x, lengths), atol=1e-2)


def test_missing_lengths_mean_full_length_and_bad_lengths_fail() -> None:
    enc = _encoder()
    x = torch.randn(3, 6, 4)
    torch.testing.assert_close(enc(x), enc(x, torch.full((3,), 6)), atol=0, rtol=0)
    with pytest.raises(AssertionError, match="lengths must lie in"):
        enc(x, torch.tensor([7, 1, 1]))


def test_empty_clip_reads_as_zero_state() -> None:
    enc = _encoder()
    out = enc(torch.randn(2, 5, 4), torch.tensor([0, 3]))
    torch.testing.assert_close(out[0], enc.proj.bias, atol=0, rtol=0)


def test_lstm_text_encoder_uses_mask_lengths() -> None:
    torch.manual_seed(0)
    enc = LSTMTextEncoder(in_dim=6, hidden=8, out_dim=5).eval()
    text = torch.randn(2, 7, 6)
    mask = torch.tensor([[1.0] * 3 + [0.0] * 4, [1.0] * 7])
    text_bert = torch.stack([torch.zeros(2, 7), mask, torch.zeros(2, 7)], dim=1)  # (B, 3, Lt)
    out = enc(text, text_bert)
    assert out.shape == (2, 5)
    text2 = text.clone()
    text2[0, 3:] = 50.0  # beyond the mask
    torch.testing.assert_close(enc(text2, text_bert), out, atol=1e-6, rtol=0)


def test_fusion_and_predictor_shapes_and_asserts() -> None:
    fusion = FusionNetwork(in_dims=[3, 4, 5], hidden=8, out_dim=6, dropout=0.1)
    h_m = fusion([torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 5)])
    assert h_m.shape == (2, 6)
    assert Predictor(in_dim=6, hidden=4, dropout=0.0)(h_m).shape == (2,)
    with pytest.raises(AssertionError, match="widths"):
        fusion([torch.randn(2, 3), torch.randn(2, 5), torch.randn(2, 4)])
    with pytest.raises(AssertionError):
        FusionNetwork(in_dims=[3, 0], hidden=8, out_dim=6, dropout=0.1)
    with pytest.raises(AssertionError):
        Predictor(in_dim=6, hidden=4, dropout=1.0)
    with pytest.raises(AssertionError):
        SequenceEncoder(in_dim=4, hidden=8, out_dim=3, num_layers=0)


def test_net_config_from_dataset_and_validation() -> None:
    ds = build_dataset(n=4)
    c = NetConfig.from_dataset(ds, text_encoder="lstm", audio_dim=7)
    assert (c.text_in_dim, c.audio_in_dim, c.vision_in_dim) == (TEXT_DIM, AUDIO_DIM, VISION_DIM)
    assert c.unimodal_dims == {"text": c.text_dim, "audio": 7, "vision": c.vision_dim}
    with pytest.raises(UserError, match="unknown network option.*audio_size"):
        NetConfig.from_dataset(ds, audio_size=3)
    with pytest.raises(UserError, match="text_encoder: 'gru'"):
        NetConfig.from_dataset(ds, text_encoder="gru")
    with pytest.raises(UserError, match="fusion_dim: must be a positive integer"):
        NetConfig.from_dataset(ds, fusion_dim=0)
    with pytest.raises(UserError, match="dropout"):
        NetConfig.from_dataset(ds, dropout=1.5)


def test_multimodal_net_forward_shapes_and_gradients() -> None:
    ds = build_dataset(n=6)
    config = NetConfig.from_dataset(
        ds, text_encoder="lstm", text_dim=5, audio_dim=4, vision_dim=3, fusion_dim=7
    )
    torch.manual_seed(0)
    net = MultimodalNet(config=config)
    batch = next(iter(make_loader(ds, "train", batch_size=6, shuffle=False)))
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net.fuse(net.encode(batch)), net(batch).h_m)
    net.train()
    out = net(batch)
    assert isinstance(out, NetOutput)
    assert {m: tuple(h.shape) for m, h in out.h.items()} == {
        "text": (6, 5), "audio": (6, 4), "vision": (6, 3)
    }
    assert out.h_m.shape == (6, 7)
    assert set(out.preds) == {"multimodal", "text", "audio", "vision"}
    assert all(p.shape == (6,) for p in out.preds.values())
    sum((p - batch["y"]).abs().mean() for p in out.preds.values()).backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_a_bert_net_reads_no_text_features_so_they_can_be_released() -> None:
    ds = build_dataset(n=6)
    config = NetConfig.from_dataset(ds, text_dim=5, audio_dim=4, vision_dim=3, fusion_dim=7)
    assert config.text_in_dim == 0 and config.unread_features == ("text",)
    assert NetConfig.from_dataset(ds, text_encoder="lstm").unread_features == ()
    with pytest.raises(UserError, match="text_in_dim: must be a positive integer"):
        NetConfig(text_in_dim=0, audio_in_dim=1, vision_in_dim=1, text_encoder="lstm")
    torch.manual_seed(0)
    net = MultimodalNet(config=config).eval()
    with torch.no_grad():
        before = net(next(iter(make_loader(ds, "train", batch_size=6, shuffle=False))))
        steps = ds.splits["train"]["text"].shape[1]
        ds.release("text")
        assert ds.splits["train"]["text"].shape == (6, steps, 0)
        assert NetConfig.from_dataset(ds, text_dim=5, audio_dim=4, vision_dim=3,
                                      fusion_dim=7) == config
        after = net(next(iter(make_loader(ds, "train", batch_size=6, shuffle=False))))
    torch.testing.assert_close(after.preds, before.preds)
