"""Transformers: dead MLP units and dead attention heads removed exactly, in Hugging Face, timm and hand-written models.

Every model is built from a small config with random weights (nothing is downloaded). Dead units and heads are
injected by zeroing weights; which ones are dead is known from the injection, not from the library's plan. Each
pruned model is compared with the original on inputs the Pruner never saw (another batch size and sequence length),
in float32 and float64, and the decoders' greedy `generate()` must give the same 20 tokens."""
import copy, pytest, torch, torch.nn as nn
from fasterai.sparse.pruner import Pruner
from fasterai.testing import hf_model, hf_inputs, HF_VOCAB as VOCAB

transformers = pytest.importorskip("transformers", reason="transformers is in the test extra: pip install -e '.[dev]'")
timm = pytest.importorskip("timm", reason="timm is in the test extra: pip install -e '.[dev]'")

TOL = {torch.float32: 1e-4, torch.float64: 1e-10}   # relative to the output's largest magnitude

def zero_out(layer, idx):
    "Make output channels `idx` of a Linear (rows) or a transformers Conv1D (columns: input-major) dead."
    with torch.no_grad():
        if isinstance(layer, nn.Linear): layer.weight[idx] = 0
        else: layer.weight[:, idx] = 0
        if layer.bias is not None: layer.bias[idx] = 0

def span(start, n): return list(range(start, start + n))

# ---- the models: each builder zeroes units and heads, and returns (model, expected), where expected(pruned) lists
# (module, attribute, value after pruning) for every layer it changed

def per_layer(layers, want):
    "`expected` for a builder: `want(layer)` lists (module, attribute, value) for each of `layers(pruned)`."
    return lambda p: [w for layer in layers(p) for w in want(layer)]

def llama():
    "Grouped-query attention (8 query heads, 2 key/value heads of 8 channels), SwiGLU MLP, rotary embeddings."
    m = hf_model('llama')
    for layer in m.model.layers:
        zero_out(layer.mlp.up_proj, span(10, 12))          # 12 MLP units: up rows zero, so gate * up is zero
        zero_out(layer.self_attn.v_proj, span(8, 8))        # key/value head 1: it goes with query heads 4-7
    return m, per_layer(lambda p: p.model.layers, lambda a: [
        (a.self_attn.q_proj, 'out_features', 32), (a.self_attn.k_proj, 'out_features', 8),
        (a.self_attn.v_proj, 'out_features', 8), (a.self_attn.o_proj, 'in_features', 32),
        (a.mlp.gate_proj, 'out_features', 84), (a.mlp.up_proj, 'out_features', 84),
        (a.mlp.down_proj, 'in_features', 84)])

def gpt2():
    "Conv1D layers (input-major weights), fused q/k/v projection split by `split_size`, GELU MLP."
    m = hf_model('gpt2')
    for block in m.transformer.h:
        zero_out(block.mlp.c_fc, span(0, 20))
        zero_out(block.attn.c_attn, span(128 + 2 * 16, 16))   # the value columns of head 2
    return m, per_layer(lambda p: p.transformer.h, lambda b: [
        (b.mlp.c_fc, 'nf', 236), (b.attn.c_attn, 'nf', 144), (b.attn, 'num_heads', 3), (b.attn, 'split_size', 48),
        (b.attn.c_proj, 'weight_rows', 48)])

def bert():
    "An encoder: separate query/key/value, the head count and width read from attributes."
    m = hf_model('bert')
    for layer in m.encoder.layer:
        zero_out(layer.intermediate.dense, span(50, 20))
        with torch.no_grad(): layer.attention.output.dense.weight[:, 16:32] = 0   # head 1: its output columns
    return m, per_layer(lambda p: p.encoder.layer, lambda l: [
        (l.attention.self.query, 'out_features', 48), (l.attention.self.value, 'out_features', 48),
        (l.attention.output.dense, 'in_features', 48), (l.intermediate.dense, 'out_features', 76),
        (l.attention.self, 'num_attention_heads', 3), (l.attention.self, 'all_head_size', 48)])

def phi3():
    "Fused q/k/v sliced by a global config (heads stay) and a fused gate/up projection split by `chunk`."
    m = hf_model('phi3')
    for layer in m.model.layers: zero_out(layer.mlp.gate_up_proj, span(96 + 30, 16))   # up rows of 16 units
    return m, per_layer(lambda p: p.model.layers, lambda l: [
        (l.mlp.gate_up_proj, 'out_features', 160), (l.mlp.down_proj, 'in_features', 80)])

def hf_vit():
    "Hugging Face's ViT: separate projections, the head count read from `num_attention_heads`."
    m = hf_model('vit')
    for layer in m.layers:
        zero_out(layer.attention.v_proj, span(48, 16))   # head 3's values
        zero_out(layer.mlp.fc1, span(0, 30))
    return m, per_layer(lambda p: p.layers, lambda l: [
        (l.attention.q_proj, 'out_features', 48), (l.attention.k_proj, 'out_features', 48),
        (l.attention.o_proj, 'in_features', 48), (l.attention, 'num_attention_heads', 3),
        (l.mlp.fc1, 'out_features', 66)])

def timm_model(name, **kw):
    def build():
        m = timm.create_model(name, pretrained=False, num_classes=10, img_size=64, **kw)
        for block in [mod for mod in m.modules() if hasattr(mod, 'attn') and hasattr(mod, 'mlp')]:
            zero_out(block.mlp.fc1, span(0, 24))
            qkv, heads = block.attn.qkv, block.attn.num_heads
            dim = qkv.out_features // 3; hd = dim // heads
            zero_out(qkv, span(2 * dim + hd, hd))   # head 1's values
        blocks = lambda model: [mod for mod in model.modules() if hasattr(mod, 'attn') and hasattr(mod, 'mlp')]
        widths = [(b.attn.num_heads, b.mlp.fc1.out_features) for b in blocks(m)]
        return m, lambda p: [w for b, (heads, units) in zip(blocks(p), widths)
                             for w in ((b.attn, 'num_heads', heads - 1), (b.mlp.fc1, 'out_features', units - 24))]
    return build

MODELS = {'llama': llama, 'gpt2': gpt2, 'bert': bert, 'phi3': phi3, 'hf_vit': hf_vit,
          'timm_vit': timm_model('vit_tiny_patch16_224', patch_size=16),
          'timm_deit': timm_model('deit_tiny_patch16_224'),
          'timm_swin': timm_model('swin_tiny_patch4_window7_224', embed_dim=32, depths=(1, 1), num_heads=(2, 4),
                                  window_size=4)}
DECODERS = ('llama', 'gpt2', 'phi3')
IMAGES = ('hf_vit', 'timm_vit', 'timm_deit', 'timm_swin')

def inputs(name, batch, length, dtype):
    "Inputs the Pruner has not seen unless `(batch, length)` is the example's: keyword inputs, or an image batch."
    if name in IMAGES and name != 'hf_vit':
        g = torch.Generator().manual_seed(batch * 100 + length)
        return (torch.randn(batch, 3, 64, 64, generator=g, dtype=dtype),)
    return hf_inputs('vit' if name == 'hf_vit' else name, batch, length, dtype, seed=batch * 100 + length)

def run(m, x): return m(**x) if isinstance(x, dict) else m(*x)

def main_output(out):
    if isinstance(out, torch.Tensor): return out
    for key in ('logits', 'last_hidden_state'):
        if key in out: return out[key]
    raise AssertionError(f"no output tensor in {type(out).__name__}")

def width(mod, attr):
    if attr == 'weight_rows': return mod.weight.shape[0]
    return getattr(mod, attr)

def snapshot(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64], ids=['f32', 'f64'])
@pytest.mark.parametrize('name', list(MODELS))
def test_dead_units_and_heads_removed_exactly(name, dtype):
    torch.manual_seed(0)
    model, expected = MODELS[name]()
    model = model.to(dtype).eval()
    before = snapshot(model)
    x = inputs(name, 2, 7, dtype)
    p = Pruner()
    pruned = p.prune_model(model, x)
    assert type(pruned) is type(model)
    for mod, attr, want in expected(pruned):   # every injected dead unit and head is gone, nothing else
        assert width(mod, attr) == want, (name, type(mod).__name__, attr, width(mod, attr), want)
    after = snapshot(model)   # the input model is untouched
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():
        for batch, length in ((3, 11), (1, 5)):   # inputs the Pruner never saw
            xs = inputs(name, batch, length, dtype)
            ref, out = main_output(run(model, xs)), main_output(run(pruned, xs))
            assert ref.shape == out.shape
            err = (ref - out).abs().max() / ref.abs().max()
            assert err <= TOL[dtype], (name, batch, length, float(err))
    assert p.report.params_after < p.report.params_before

@pytest.mark.parametrize('name', DECODERS)
def test_generate_matches(name):
    torch.manual_seed(0)
    model, _ = MODELS[name]()
    model = model.double().eval()
    x = inputs(name, 2, 6, torch.float64)
    pruned = Pruner().prune_model(model, x)
    prompt = inputs(name, 2, 5, torch.float64)
    kw = dict(max_new_tokens=20, do_sample=False, min_new_tokens=20, pad_token_id=0)
    with torch.no_grad():
        want, got = model.generate(**prompt, **kw), pruned.generate(**prompt, **kw)
    assert want.shape[1] == 5 + 20 and torch.equal(want, got)

def test_padding_mask_and_keyword_inputs():
    "Left padding: a mask with zeros; inputs given as the keywords a tokenizer returns."
    torch.manual_seed(0)
    model, _ = llama(); model = model.double().eval()
    x = inputs('llama', 2, 8, torch.float64); x['attention_mask'][0, :3] = 0
    pruned = Pruner().prune_model(model, x)
    y = inputs('llama', 3, 9, torch.float64); y['attention_mask'][1, :4] = 0
    with torch.no_grad(): ref, out = run(model, y).logits, run(pruned, y).logits
    keep = y['attention_mask'].bool()
    assert torch.allclose(ref[keep], out[keep], rtol=1e-10, atol=1e-10)

def test_query_rows_alone_keep_the_head():
    "A head whose query and key rows are zero still averages its values: it stays, and the report says why."
    torch.manual_seed(0)
    model, _ = bert(); model = model.double().eval()
    a = model.encoder.layer[0].attention.self
    zero_out(a.query, span(32, 16)); zero_out(a.key, span(32, 16))   # head 2's queries and keys
    p = Pruner(); pruned = p.prune_model(model, inputs('bert', 2, 7, torch.float64))
    assert pruned.encoder.layer[0].attention.self.num_attention_heads == 3   # head 1 (dead outputs) went, not head 2
    rows = [r for r in p.report.layers if r['layer'] == 'encoder.layer.0.attention.self.query']
    assert rows and rows[0]['codes'].get('live_head') == 16

def test_phi3_heads_kept_with_a_reason():
    "Phi-3 slices its fused q/k/v with the model-wide config: its heads stay, and the report says which op keeps them."
    torch.manual_seed(0)
    model, _ = phi3(); model = model.double().eval()
    for layer in model.model.layers: zero_out(layer.self_attn.qkv_proj, span(64 + 32 + 8, 8))   # a value head
    p = Pruner(); pruned = p.prune_model(model, inputs('phi3', 2, 7, torch.float64))
    assert pruned.model.layers[0].self_attn.qkv_proj.out_features == 128
    assert any('slice' in why for why in p.report.frozen)

@pytest.mark.parametrize('name', ['llama', 'gpt2', 'bert', 'timm_vit'])
def test_save_and_load(name, tmp_path):
    "A pruned model saved with `save_pruned` loads into a freshly built model: widths, head counts and weights."
    from fasterai.sparse import save_pruned, load_pruned
    torch.manual_seed(0)
    model, _ = MODELS[name](); model = model.double().eval()
    x = inputs(name, 2, 7, torch.float64)
    pruned = Pruner().prune_model(model, x)
    save_pruned(pruned, tmp_path / 'pruned.pt')
    build = (lambda: hf_model(name)) if name in ('llama', 'gpt2', 'bert') else \
        (lambda: timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=10, img_size=64))
    loaded = load_pruned(build, tmp_path / 'pruned.pt').eval()
    y = inputs(name, 3, 9, torch.float64)
    with torch.no_grad(): assert torch.equal(main_output(run(pruned, y)), main_output(run(loaded, y)))
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in pruned.parameters())

def test_cli_prunes_a_save_pretrained_folder(tmp_path):
    "`fasterai prune ./folder` on a folder written by save_pretrained: token ids as input, heads and units removed."
    import subprocess, sys
    from fasterai.sparse import load_pruned
    torch.manual_seed(0)
    model, _ = llama(); model.save_pretrained(tmp_path / 'tiny-llama')
    out = tmp_path / 'tiny-llama-pruned.pt'
    code = "import sys; from fasterai.cli import main; sys.exit(main())"
    r = subprocess.run([sys.executable, '-c', code, 'prune', str(tmp_path / 'tiny-llama'), '--no-sparsify',
                        '--quiet', '--layers', '-o', str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert 'heads of model.layers.0.self_attn: 4 of 8 removed (1 of 2 key/value heads)' in r.stdout, r.stdout
    loaded = load_pruned(lambda: transformers.LlamaForCausalLM(model.config), out)
    assert loaded.model.layers[0].self_attn.k_proj.out_features == 8
    x = torch.randint(0, VOCAB, (2, 9))
    with torch.no_grad(): assert torch.allclose(loaded(x).logits, model(x).logits, atol=1e-4)

def _token_batch(b, n):
    "Token ids and a full attention mask, `b` sequences of `n` tokens."
    return {'input_ids': torch.randint(1, VOCAB, (b, n)), 'attention_mask': torch.ones(b, n, dtype=torch.long)}

@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float64], ids=['f32', 'bf16', 'f64'])
def test_llama_decoder_pruned_in_place(dtype):
    "The 1.1B benchmark's decoder, small: in place, in bfloat16 too (compared in float32), on unseen inputs."
    from fasterai.testing import llama_decoder
    from fasterai.sparse.measure import run_checked
    m = llama_decoder(layers=2, hidden=128, mlp=256, heads=8, kv_heads=2, vocab=VOCAB, dtype=dtype)
    unseen = [_token_batch(3, 11), _token_batch(1, 4)]
    logits = lambda model, x: run_checked(model, (x['input_ids'], x['attention_mask'])).logits
    refs = [logits(m, x) for x in unseen]
    p = Pruner()
    assert p.prune_model(m, _token_batch(1, 6), inplace=True) is m
    for layer in m.model.layers:   # 40% of 256 units dead: 102; one key/value group of 16 channels, 4 query heads
        a = layer.self_attn
        assert (layer.mlp.gate_proj.out_features, layer.mlp.down_proj.in_features) == (154, 154)
        assert (a.q_proj.out_features, a.k_proj.out_features, a.v_proj.out_features, a.o_proj.in_features) == (64, 16, 16, 64)
        assert all(t.dtype == dtype for t in layer.parameters())
    for ref, x in zip(refs, unseen):
        err = (logits(m, x) - ref).abs().max() / ref.abs().max()
        assert err <= (1e-10 if dtype == torch.float64 else 1e-4), (dtype, float(err))
    assert {'trace', 'analysis', 'surgery', 'check'} <= set(p.report.stages)

def test_bfloat16_check_through_the_shared_buffer(monkeypatch):
    """A bfloat16 decoder whose every Linear the float32 check widens into its one shared buffer, a few rows at a
    time (`_WHOLE` and `_BLOCK` lowered, as for an LLM's large layers): pruned (a copy) exactly on unseen inputs
    against a whole float32 copy of the original, its dead units gone, the input model untouched."""
    from fasterai.sparse import measure
    from fasterai.testing import llama_decoder
    monkeypatch.setattr(measure, '_WHOLE', 0); monkeypatch.setattr(measure, '_BLOCK', 1000)   # 7 rows of 128 a block
    m = llama_decoder(layers=2, hidden=128, mlp=256, heads=8, kv_heads=2, vocab=VOCAB, dtype=torch.bfloat16)
    unseen, before = [_token_batch(3, 11), _token_batch(1, 4)], {k: t.clone() for k, t in m.state_dict().items()}
    with torch.no_grad():
        full = copy.deepcopy(m).float()
        refs = [full(x['input_ids'], x['attention_mask']).logits for x in unseen]
    p = Pruner()
    pruned = p.prune_model(m, _token_batch(1, 6))
    assert p.report.max_abs_diff is not None   # the check ran, through the blocks
    for layer in pruned.model.layers:
        a = layer.self_attn
        assert (layer.mlp.gate_proj.out_features, layer.mlp.down_proj.in_features) == (154, 154)
        widths = (a.q_proj.out_features, a.k_proj.out_features, a.v_proj.out_features, a.o_proj.in_features)
        assert widths == (64, 16, 16, 64)
        assert all(t.dtype == torch.bfloat16 for t in layer.parameters())
    for ref, x in zip(refs, unseen):
        out = measure.run_checked(pruned, (x['input_ids'], x['attention_mask'])).logits
        assert out.dtype == torch.float32
        err = (out - ref).abs().max() / ref.abs().max()
        assert err <= 1e-4, float(err)
    assert all(torch.equal(before[k], t) for k, t in m.state_dict().items())
