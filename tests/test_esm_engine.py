"""analysis.esm against fair-esm on tiny random checkpoints (no network, no database)."""

from __future__ import annotations

import random
import threading
import time
import urllib.error

import numpy as np
import pytest
import torch

from analysis.esm.compute import (
    ESM2,
    CheckpointError,
    EmbedOptions,
    EmbeddingCancelled,
    Engine,
    ModelCache,
    WeightsMissing,
    fair_esm_model,
    load_checkpoint,
)
from analysis.esm.compute import alphabet
from tests.esm_fixtures import tiny_state_dict, write_tiny_esm2

NAME = "esm2_t6_8M_UR50D"  # a real model's name, tiny weights behind it
LAYERS = 3
TOL = 1e-5
ALL = frozenset({"mean", "per_tok", "bos", "contacts"})


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch hub pointed at an empty temporary directory; any download fails the test."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))

    def no_network(url, *args, **kwargs):
        pytest.fail(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


@pytest.fixture
def ckpt(hub):
    write_tiny_esm2(hub, NAME, num_layers=LAYERS, embed_dim=48, heads=4, seed=1)
    return load_checkpoint(NAME)


@pytest.fixture
def engine(ckpt):
    return Engine(ckpt)


def random_seqs(lengths, seed=0):
    rng = random.Random(seed)
    letters = sorted(alphabet.ACCEPTED_RESIDUES - {".", "-"})
    return [(f"seq{i}", "".join(rng.choice(letters) for _ in range(n))) for i, n in enumerate(lengths)]


def fair_esm_extract(ckpt, records, repr_layers, toks_per_batch=4096, truncation=1022):
    """scripts/extract.py's loop, results kept in memory."""
    from esm.data import FastaBatchedDataset

    model, alph = fair_esm_model(ckpt)
    dataset = FastaBatchedDataset([r[0] for r in records], [r[1] for r in records])
    batches = dataset.get_batch_indices(toks_per_batch, extra_toks_per_seq=1)
    loader = torch.utils.data.DataLoader(
        dataset, collate_fn=alph.get_batch_converter(truncation), batch_sampler=batches)
    n = model.num_layers
    layers = [(i + n + 1) % (n + 1) for i in repr_layers]
    out = {}
    with torch.no_grad():
        for labels, strs, toks in loader:
            res = model(toks, repr_layers=layers, return_contacts=True)
            reps, contacts = res["representations"], res["contacts"]
            for i, label in enumerate(labels):
                L = min(truncation, len(strs[i]))
                out[label] = {
                    "per_tok": {k: t[i, 1 : L + 1].clone() for k, t in reps.items()},
                    "mean": {k: t[i, 1 : L + 1].mean(0).clone() for k, t in reps.items()},
                    "bos": {k: t[i, 0].clone() for k, t in reps.items()},
                    "contacts": contacts[i, :L, :L].clone(),
                    "batch": len(labels),
                }
    return out


def max_diff(a, b) -> float:
    return float((torch.as_tensor(np.asarray(a)) - torch.as_tensor(np.asarray(b))).abs().max())


# --- alphabet and model layout -------------------------------------------


def test_alphabet_is_fair_esms():
    from esm.data import Alphabet

    ref = Alphabet.from_architecture("ESM-1b")
    assert list(alphabet.TOKENS) == ref.all_toks
    assert (alphabet.CLS, alphabet.PAD, alphabet.EOS, alphabet.UNK, alphabet.MASK) == (0, 1, 2, 3, 32)
    assert alphabet.ACCEPTED_RESIDUES == {t for t in ref.all_toks if len(t) == 1}
    seq = "MKTAYIAKQRXBUZO-."
    _, _, toks = ref.get_batch_converter()([("a", seq)])
    assert alphabet.tokenize(seq) == toks[0].tolist()


def test_invalid_residues_name_record_and_position(engine):
    with pytest.raises(ValueError, match=r"record 'bad'.*'J' at position 3"):
        engine.embed([("ok", "MKV"), ("bad", "MKJV")])
    with pytest.raises(ValueError, match=r"'k' at position 2.*upper-case"):
        alphabet.tokenize("MkV", "x")
    with pytest.raises(ValueError, match="empty"):
        engine.embed([("e", "")])


def test_state_dict_matches_fair_esm():
    from esm.model.esm2 import ESM2 as FairESM2

    ours = {k: tuple(v.shape) for k, v in ESM2(3, 48, 4).state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in FairESM2(3, 48, 4).state_dict().items()}
    assert ours == theirs


def test_low_precision_keeps_rotary_and_contact_head_in_float32():
    model = ESM2(2, 32, 4).to(torch.bfloat16)
    assert model.layers[0].self_attn.rot_emb.inv_freq.dtype == torch.float32
    assert model.contact_head.regression.weight.dtype == torch.float32
    assert model.layers[0].fc1.weight.dtype == torch.bfloat16


# --- checkpoints ------------------------------------------------------------


def test_load_by_name_from_torch_hub(ckpt, hub):
    assert ckpt.name == NAME
    assert (ckpt.num_layers, ckpt.embed_dim, ckpt.attention_heads, ckpt.token_dropout) == (LAYERS, 48, 4, True)
    assert ckpt.has_contact_regression
    assert ckpt.path == hub / "checkpoints" / f"{NAME}.pt"
    assert not any(k.startswith("encoder.") for k in ckpt.state_dict)
    expected = tiny_state_dict(LAYERS, 48, 4, seed=1)
    assert set(ckpt.state_dict) == set(expected)
    assert torch.equal(ckpt.state_dict["layers.2.fc1.weight"], expected["layers.2.fc1.weight"])


def test_weights_dir_is_searched_before_torch_hub(hub, tmp_path):
    write_tiny_esm2(hub, NAME, num_layers=2, embed_dim=32, heads=4)
    mine = tmp_path / "mine"
    write_tiny_esm2(mine, NAME, num_layers=3, embed_dim=32, heads=4)
    ckpt = load_checkpoint(NAME, weights_dir=mine / "checkpoints", allow_download=False)
    assert ckpt.num_layers == 3 and ckpt.path.parent == mine / "checkpoints"


def test_local_path_with_regression_beside_it(hub, tmp_path):
    path = write_tiny_esm2(tmp_path / "elsewhere", "my_finetune", num_layers=2, embed_dim=32, heads=4)
    ckpt = load_checkpoint(str(path))
    assert ckpt.name == "my_finetune" and ckpt.has_contact_regression
    model, _ = fair_esm_model(ckpt)  # fair-esm builds it despite the non-"esm2" name
    assert model.num_layers == 2


def test_missing_weights_offline_names_files_and_directories(hub, tmp_path):
    with pytest.raises(WeightsMissing) as err:
        load_checkpoint(NAME, weights_dir=tmp_path / "w", allow_download=False)
    message = str(err.value)
    assert f"{NAME}.pt" in message and f"{NAME}-contact-regression.pt" in message
    assert str(tmp_path / "w") in message and str(hub / "checkpoints") in message
    assert "switched off" in message


def test_failed_download_is_weights_missing(hub, monkeypatch):
    calls = []

    def offline(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsMissing, match="download failed.*Name or service not known"):
        load_checkpoint(NAME)
    assert calls[0] == f"https://dl.fbaipublicfiles.com/fair-esm/models/{NAME}.pt"


def test_download_goes_where_fair_esm_looks(hub, monkeypatch, tmp_path):
    source = write_tiny_esm2(tmp_path / "server", NAME, num_layers=2, embed_dim=32, heads=4)
    calls = []

    def fake_download(url, dst, *args, **kwargs):
        calls.append((url, dst))
        name = url.rsplit("/", 1)[1]
        (tmp_path / "x").write_bytes((source.parent / name).read_bytes())
        (tmp_path / "x").rename(dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    ckpt = load_checkpoint(NAME)
    assert [c[0] for c in calls] == [
        f"https://dl.fbaipublicfiles.com/fair-esm/models/{NAME}.pt",
        f"https://dl.fbaipublicfiles.com/fair-esm/regression/{NAME}-contact-regression.pt",
    ]
    assert {c[1] for c in calls} == {str(hub / "checkpoints" / f"{NAME}.pt"),
                                    str(hub / "checkpoints" / f"{NAME}-contact-regression.pt")}
    assert ckpt.has_contact_regression


class Payload:
    def __reduce__(self):  # a malicious pickle would name os.system here
        return (print, ("unpickling ran code",))


def test_checkpoint_with_other_globals_is_refused(hub, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "cfg": {"model": None}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"Refusing to load .*builtins.print"):
        load_checkpoint(str(path))


def test_contacts_without_regression_weights(hub):
    write_tiny_esm2(hub, NAME, num_layers=2, embed_dim=32, heads=4, with_regression=False)
    ckpt = load_checkpoint(NAME, allow_download=False)
    assert not ckpt.has_contact_regression
    engine = Engine(ckpt)
    assert engine.embed([("a", "MKV")])[0].mean  # embeddings still work
    with pytest.raises(WeightsMissing, match=f"{NAME}-contact-regression.pt"):
        engine.embed([("a", "MKV")], EmbedOptions(include={"contacts"}))


# --- exactness ------------------------------------------------------------


def test_parity_with_fair_esm(ckpt, engine):
    # Lengths chosen so fair-esm and our engine both batch several sequences
    # with padding, plus one longer than fair-esm's 1022-residue truncation.
    records = random_seqs([1, 7, 30, 31, 57, 80, 95, 120, 1100])
    layers = [0, 2, -1, -3]  # 0, a middle one, the last, and a negative alias of layer 1
    ref = fair_esm_extract(ckpt, records, layers, toks_per_batch=512)
    assert max(r["batch"] for r in ref.values()) > 1
    ours = engine.embed(records, EmbedOptions(repr_layers=layers, include=ALL, toks_per_batch=512))
    assert [r.id for r in ours] == [r[0] for r in records]
    for res in ours:
        exp = ref[res.id]
        assert set(res.per_tok) == set(exp["per_tok"]) == {0, 1, 2, 3}
        for layer in exp["per_tok"]:
            assert max_diff(res.per_tok[layer], exp["per_tok"][layer]) <= TOL, (res.id, layer)
            assert max_diff(res.mean[layer], exp["mean"][layer]) <= TOL, (res.id, layer)
            assert max_diff(res.bos[layer], exp["bos"][layer]) <= TOL, (res.id, layer)
        assert max_diff(res.contacts, exp["contacts"]) <= TOL, res.id
    long = ours[-1]
    assert long.truncated and long.embedded_length == 1022 and long.per_tok[3].shape == (1022, 48)
    # The final layer norm belongs to the last layer only: with random norm
    # weights a misplaced one would make these differ grossly, not by 1e-5.
    assert max_diff(ours[3].per_tok[3], ours[3].per_tok[2]) > 0.1


@pytest.mark.parametrize("packed", [True, False])
def test_embeddings_without_contacts_match_fair_esm(ckpt, engine, monkeypatch, packed):
    # Without contacts a CPU engine lays sequences end to end (no padding);
    # equal-length neighbours share one attention call, the rest go alone.
    # packed=False is the GPU's path: padded batches, fused attention with a mask.
    assert engine.packed
    engine.packed = packed
    calls = []
    forward_packed = engine.model.forward_packed
    monkeypatch.setattr(engine.model, "forward_packed",
                        lambda *a, **k: calls.append(a[1]) or forward_packed(*a, **k))
    records = random_seqs([1, 7, 30, 30, 30, 57, 80, 95, 120, 1100], seed=5)
    layers = [0, 2, -1, -3]
    ref = fair_esm_extract(ckpt, records, layers, toks_per_batch=512)
    ours = engine.embed(records, EmbedOptions(repr_layers=layers, include={"mean", "per_tok", "bos"},
                                              toks_per_batch=512))
    if packed:
        assert any(lengths.count(32) == 3 for lengths in calls)  # the run of three 30-residue sequences
    else:
        assert not calls
    for res in ours:
        exp = ref[res.id]
        for layer in exp["per_tok"]:
            assert max_diff(res.per_tok[layer], exp["per_tok"][layer]) <= TOL, (res.id, layer)
            assert max_diff(res.mean[layer], exp["mean"][layer]) <= TOL, (res.id, layer)
            assert max_diff(res.bos[layer], exp["bos"][layer]) <= TOL, (res.id, layer)
    assert ours[-1].per_tok[3].shape == (1022, 48)


def test_packed_forward_equals_padded_forward_with_masked_tokens(ckpt):
    # <mask> tokens change each sequence's token-dropout scaling, which the
    # packed path must apply per sequence, not per batch.
    model = ESM2(LAYERS, 48, 4)
    model.load_state_dict(ckpt.state_dict)
    model.eval()
    seqs = [tok for _, s in random_seqs([9, 9, 25, 4], seed=11) for tok in [alphabet.tokenize(s)]]
    seqs[0][3] = seqs[2][5] = seqs[2][6] = alphabet.MASK
    width = max(map(len, seqs))
    padded = torch.tensor([t + [alphabet.PAD] * (width - len(t)) for t in seqs])
    flat = torch.tensor([tok for t in seqs for tok in t])
    with torch.inference_mode():
        expected = model(padded, repr_layers=[0, 1, 3])["representations"]
        got = model.forward_packed(flat, [len(t) for t in seqs], [0, 1, 3])
    start = 0
    for b, t in enumerate(seqs):
        for layer in (0, 1, 3):
            assert max_diff(got[layer][start : start + len(t)], expected[layer][b, : len(t)]) <= TOL, (b, layer)
        start += len(t)


def test_model_logits_match_fair_esm(ckpt):
    model, alph = fair_esm_model(ckpt)
    ours = ESM2(LAYERS, 48, 4)
    ours.load_state_dict(ckpt.state_dict)
    _, _, toks = alph.get_batch_converter()(random_seqs([5, 40]))
    with torch.no_grad():
        expected = model(toks)["logits"]
        got = ours.eval()(toks, repr_layers=[], need_logits=True)["logits"]
    # Logits are large (tens), so compare relative to their size.
    assert max_diff(got, expected) <= TOL * float(expected.abs().max())


def test_stopping_early_gives_the_same_middle_layer(engine):
    records = random_seqs([20, 45])
    full = engine.embed(records, EmbedOptions(repr_layers=[1, 3], include={"per_tok"}))
    part = engine.embed(records, EmbedOptions(repr_layers=[1], include={"per_tok"}))
    for a, b in zip(full, part):
        assert np.array_equal(a.per_tok[1], b.per_tok[1])


def test_bfloat16_close_to_float32(ckpt):
    records = random_seqs([12, 50, 90], seed=3)
    opts = EmbedOptions(repr_layers=[0, 1, 2, 3], include={"per_tok"})
    fp32 = Engine(ckpt).embed(records, opts)
    bf16 = Engine(ckpt, dtype="bfloat16").embed(records, opts)
    for a, b in zip(fp32, bf16):
        for layer in range(4):
            x, y = a.per_tok[layer], b.per_tok[layer]
            cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
            assert cos.min() >= 0.999, (a.id, layer, cos.min())


def test_batch_independence(engine):
    target = random_seqs([33], seed=7)[0]
    others = random_seqs([70, 64, 5], seed=8)
    opts = EmbedOptions(repr_layers=[0, 2, 3], include=ALL)
    alone = engine.embed([target], opts)[0]
    batched = engine.embed([others[0], target, *others[1:]], opts)[1]
    for layer in (0, 2, 3):
        assert max_diff(alone.per_tok[layer], batched.per_tok[layer]) <= TOL
        assert max_diff(alone.mean[layer], batched.mean[layer]) <= TOL
        assert max_diff(alone.bos[layer], batched.bos[layer]) <= TOL
    assert max_diff(alone.contacts, batched.contacts) <= TOL


# --- batching, OOM, progress ------------------------------------------------


def test_token_budget_batches(engine):
    sizes = []
    engine.before_forward = lambda toks: sizes.append(tuple(toks.shape))
    engine.embed(random_seqs([10, 10, 10, 50, 200]), EmbedOptions(toks_per_batch=64))
    # 202 tokens exceed the budget and go alone; 52 fits once; three of 12 fit together.
    assert sorted(sizes) == [(1, 52), (1, 202), (3, 12)]


def test_out_of_memory_splits_batch(engine):
    records = random_seqs([40, 41, 42, 43, 44, 45, 46])
    opts = EmbedOptions(repr_layers=[0, -1], include=ALL)
    unsplit = engine.embed(records, opts)

    batch_sizes = []

    def fake_oom(tokens):
        batch_sizes.append(tokens.shape[0])
        if tokens.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    engine.before_forward = fake_oom
    reports = []
    split = engine.embed(records, opts, progress=lambda done, total: reports.append((done, total)))
    assert batch_sizes[:3] == [7, 3, 1] and max(batch_sizes[1:]) <= 4
    assert reports[-1] == (7, 7) and len(reports) >= 4
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    for a, b in zip(unsplit, split):
        assert a.id == b.id
        for layer in (0, 3):
            assert max_diff(a.per_tok[layer], b.per_tok[layer]) <= TOL
        assert max_diff(a.contacts, b.contacts) <= TOL

    def always_oom(tokens):
        raise torch.cuda.OutOfMemoryError("too big")

    engine.before_forward = always_oom
    with pytest.raises(torch.cuda.OutOfMemoryError):  # one sequence cannot be split further
        engine.embed(records[:1], opts)


def test_cpu_workers_run_batches_side_by_side_in_order(engine, monkeypatch):
    records = random_seqs([30, 31, 32, 60, 61, 90, 5, 5, 5, 120], seed=12)
    opts = EmbedOptions(repr_layers=[0, -1], include={"mean", "per_tok", "bos"}, toks_per_batch=128)
    engine.cpu_workers = 1
    serial = engine.embed(records, opts)

    threads_seen = set()
    forward = engine._forward
    monkeypatch.setattr(engine, "_forward", lambda *a: threads_seen.add(threading.get_ident()) or forward(*a))
    engine.cpu_workers = 2
    before = torch.get_num_threads()
    reports = []
    side_by_side = engine.embed(records, opts, progress=lambda done, total: reports.append(done))
    assert len(threads_seen) == 2 and threading.get_ident() not in threads_seen
    assert torch.get_num_threads() == before  # the workers' one-thread setting stays in the workers
    assert reports == sorted(reports) and reports[-1] == len(records) and len(reports) > 2
    for a, b in zip(serial, side_by_side):
        assert a.id == b.id
        for layer in (0, 3):
            assert max_diff(a.per_tok[layer], b.per_tok[layer]) <= TOL
            assert max_diff(a.mean[layer], b.mean[layer]) <= TOL
            assert max_diff(a.bos[layer], b.bos[layer]) <= TOL


@pytest.mark.parametrize("workers", [1, 2])
def test_should_stop_cancels(engine, workers):
    engine.cpu_workers = workers
    calls = []
    with pytest.raises(EmbeddingCancelled):
        engine.embed(random_seqs([30] * 6), EmbedOptions(toks_per_batch=64),
                     progress=lambda d, t: calls.append(d), should_stop=lambda: len(calls) >= 1)
    assert calls == [2]


def test_identical_sequences_are_embedded_once(engine):
    a, b = random_seqs([20, 35], seed=9)
    records = [a, ("a-again", a[1]), b, ("a-third", a[1])]
    batch_rows = []
    engine.before_forward = lambda toks: batch_rows.append(toks.shape[0])
    reports = []
    res = engine.embed(records, EmbedOptions(include=ALL), progress=lambda d, t: reports.append((d, t)))
    assert sum(batch_rows) == 2 and reports[-1] == (4, 4)
    assert [r.id for r in res] == ["seq0", "a-again", "seq1", "a-third"]
    assert np.array_equal(res[1].mean[3], res[0].mean[3]) and res[1].mean[3] is not res[0].mean[3]
    assert np.array_equal(res[3].contacts, res[0].contacts)
    batch_rows.clear()
    engine.embed(records, EmbedOptions(deduplicate=False))
    assert sum(batch_rows) == 4


# --- long sequences --------------------------------------------------------


def test_truncation_warns_and_matches_prefix(engine):
    (rid, seq), = random_seqs([75], seed=5)
    opts = EmbedOptions(include={"per_tok", "mean"}, window=30)
    res = engine.embed([(rid, seq)], opts)[0]
    prefix = engine.embed([("p", seq[:30])], opts)[0]
    assert res.truncated and res.windows == 1 and res.length == 75 and res.embedded_length == 30
    assert "only residues 1-30" in res.warnings[0]
    assert np.array_equal(res.per_tok[3], prefix.per_tok[3])


def test_window_stitching(engine):
    W, O, L = 30, 10, 75
    (rid, seq), = random_seqs([L], seed=6)
    opts = EmbedOptions(repr_layers=[2, -1], include=ALL, long_sequences="window", window=W, window_overlap=O)
    res = engine.embed([(rid, seq)], opts)[0]
    starts = [0, 20, 40, 45]  # step W - O; the last window ends at the sequence's end
    assert res.windows == 4 and not res.truncated and res.embedded_length == L
    wins = engine.embed([(f"w{s}", seq[s : s + W]) for s in starts], EmbedOptions(repr_layers=[2, -1], include=ALL))

    # Written out from the docstring: weight (j+1)/(O+1) for the j-th residue
    # in from an edge inside the sequence (j < O), 1 elsewhere.
    def weight(s, pos):
        j = pos - s
        w = 1.0
        if s > 0 and j < O:
            w = min(w, (j + 1) / (O + 1))
        if s + W < L and W - 1 - j < O:
            w = min(w, (W - j) / (O + 1))
        return w

    for layer in (2, 3):
        stitched = res.per_tok[layer]
        assert stitched.shape == (L, 48)
        for pos in range(L):
            covering = [(s, w) for s, w in zip(starts, wins) if s <= pos < s + W]
            if len(covering) == 1:
                s, w = covering[0]
                assert np.array_equal(stitched[pos], w.per_tok[layer][pos - s]), pos
            else:
                weights = np.array([weight(s, pos) for s, _ in covering])
                rows = np.stack([w.per_tok[layer][pos - s] for s, w in covering])
                assert np.allclose(stitched[pos], weights @ rows / weights.sum(), atol=1e-6), pos
                assert np.all(stitched[pos] <= rows.max(0) + 1e-6) and np.all(stitched[pos] >= rows.min(0) - 1e-6)
        assert np.allclose(res.mean[layer], stitched.mean(0), atol=1e-6)
        assert np.array_equal(res.bos[layer], wins[0].bos[layer])

    for i, j in [(0, 1), (25, 22), (44, 60), (10, 70), (74, 74)]:
        maps = [w.contacts[i - s, j - s] for s, w in zip(starts, wins) if s <= min(i, j) and max(i, j) < s + W]
        if maps:
            assert res.contacts[i, j] == pytest.approx(np.mean(maps), abs=1e-6)
        else:
            assert np.isnan(res.contacts[i, j])
    assert any("NaN" in w for w in res.warnings)


def test_short_sequence_in_window_mode_is_one_window(engine):
    res = engine.embed(random_seqs([25]), EmbedOptions(long_sequences="window", window=30, window_overlap=10))[0]
    assert res.windows == 1 and not res.warnings


# --- options ----------------------------------------------------------------


def test_layer_and_option_validation(engine):
    assert engine.resolve_layers([-1, 3, 0, -4]) == [3, 0]
    with pytest.raises(ValueError, match="layer 4 does not exist"):
        engine.embed(random_seqs([5]), EmbedOptions(repr_layers=[4]))
    with pytest.raises(ValueError, match="layer -5"):
        engine.resolve_layers([-5])
    with pytest.raises(ValueError, match="include"):
        EmbedOptions(include={"logits"})
    with pytest.raises(ValueError, match="window_overlap"):
        EmbedOptions(long_sequences="window", window=30, window_overlap=30)
    with pytest.raises(ValueError, match="runs in torch.float32"):
        engine.embed(random_seqs([5]), EmbedOptions(dtype="bfloat16"))


# --- model cache ------------------------------------------------------------


class FakeEngine:
    def __init__(self, name, size):
        self.name, self.param_bytes = name, size


def test_cache_evicts_least_recently_used():
    cache = ModelCache(max_bytes=100)
    loads = []

    def loader(name, size):
        def load():
            loads.append(name)
            return FakeEngine(name, size)
        return load

    a = cache.get("a", loader("a", 40))
    cache.get("b", loader("b", 40))
    assert cache.get("a", loader("a", 40)) is a  # a is now the most recent
    cache.get("c", loader("c", 40))  # 120 > 100: b, the least recent, goes
    assert cache.keys() == ["a", "c"] and loads == ["a", "b", "c"]
    cache.get("huge", loader("huge", 500))  # over budget alone: kept, alone
    assert cache.keys() == ["huge"]
    cache.get("a", loader("a", 40))
    assert cache.keys() == ["a"] and loads[-1] == "a"


def test_cache_loads_once_under_concurrency_and_forgets_failures():
    cache = ModelCache(max_bytes=10**9)
    loads = []

    def slow():
        loads.append(1)
        time.sleep(0.2)
        return FakeEngine("m", 1)

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("m", slow))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len({id(g) for g in got}) == 1

    def broken():
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        cache.get("x", broken)
    assert "x" not in cache
    assert cache.get("x", lambda: FakeEngine("x", 1)).name == "x"


def test_cache_with_real_engines(ckpt):
    engine = Engine(ckpt)
    cache = ModelCache(max_bytes=engine.param_bytes)
    assert cache.get(("tiny", "cpu", "float32"), lambda: engine) is engine
    other = cache.get(("tiny", "cpu", "bfloat16"), lambda: Engine(ckpt, dtype="bfloat16"))
    assert other.dtype == torch.bfloat16
    assert cache.keys() == [("tiny", "cpu", "bfloat16")]  # fp32 + bf16 exceed one fp32 model


@pytest.fixture
def slow_layers(engine):
    """Every layer takes 0.4 s (a forward hook on a norm both paths call), so
    one batch of the 3-layer model takes 1.2 s, as a big model's does on a CPU."""
    handles = [layer.final_layer_norm.register_forward_hook(lambda *a: time.sleep(0.4))
               for layer in engine.model.layers]
    yield
    for handle in handles:
        handle.remove()


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_moves_within_a_slow_batch(engine, slow_layers, workers):
    engine.cpu_workers = workers
    reports = []
    engine.embed(random_seqs([30] * 4), EmbedOptions(toks_per_batch=64),  # two batches of two
                 progress=lambda done, total: reports.append(done), report_every=0.2)
    assert reports == sorted(reports) and reports[-1] == 4
    assert any(0 < d < 2 and d != int(d) for d in reports), reports  # before the first batch ended


@pytest.mark.parametrize("workers", [1, 2])
def test_stop_takes_effect_within_a_layer_not_a_batch(engine, slow_layers, workers):
    engine.cpu_workers = workers
    asked_at = time.monotonic() + 0.2  # in the first batch
    with pytest.raises(EmbeddingCancelled):
        engine.embed(random_seqs([30] * 8), EmbedOptions(toks_per_batch=64),
                     should_stop=lambda: time.monotonic() >= asked_at)
    # A layer is 0.4 s, a batch 1.2 s: waiting for the batches running would take 1 s or more.
    assert time.monotonic() - asked_at < 0.8
