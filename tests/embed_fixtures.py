"""What the embedding tests share: a WordPiece vocabulary trained with Hugging Face `tokenizers` on the test
corpus, a random perturbed transformers BertModel saved with it, and sentence-transformers directories built
with sentence-transformers' own classes around it (Transformer + Pooling + Normalize, save()).
"""

import os
import warnings

from corpus import CORPUS
from helpers import make_checkpoint, perturb_shift

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
            max_position_embeddings=96, type_vocab_size=2)  # fmt: skip
# sentences of the corpus, in every script, and some code
SENTENCES = [line.strip() for text in CORPUS.values() for line in text.splitlines() if line.strip()]


def train_wordpiece(path, *, vocab_size=3000, lowercase=True, strip_accents=None):
    """A BERT tokenizer.json trained on the corpus (BertNormalizer, BertPreTokenizer, [CLS] $A [SEP]) at path
    (a directory; tokenizer_config.json and vocab.txt written by transformers beside it)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=strip_accents)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(list(CORPUS.values()), trainers.WordPieceTrainer(vocab_size=vocab_size,
                                                                            special_tokens=SPECIALS))  # fmt: skip
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase, strip_accents=strip_accents,
                             unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                             mask_token="[MASK]")  # fmt: skip
    fast.save_pretrained(str(path))
    return tok


def make_bert(path, *, seed=0, arch="bert", **config):
    """A tokenizer trained into path and a random perturbed BertModel saved there: (path, transformers model)."""
    tok = train_wordpiece(path)
    cfg = dict(BERT, vocab_size=tok.get_vocab_size(), **config)
    return make_checkpoint(path, arch, seed=seed, perturb=perturb_shift(seed + 1), **cfg)


def make_sentence_dir(path, bert_dir, *, pooling="mean", normalize=True, max_seq_length=None):
    """A sentence-transformers directory at path around the BERT at bert_dir, saved by SentenceTransformer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Normalize, Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling

        t = Transformer(str(bert_dir), max_seq_length=max_seq_length)
        mods = [t, Pooling(t.get_embedding_dimension(), pooling)] + ([Normalize()] if normalize else [])
        st = SentenceTransformer(modules=mods, device="cpu")
        st.save(str(path))
    return str(path), st


def load_sentence(path):
    """SentenceTransformer(path) on the CPU, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(os.fspath(path), device="cpu")


def convert_gguf(st_dir, out, outtype="f32"):
    """The model at st_dir (a sentence-transformers directory: its pooling is written too) as a GGUF file by
    llama.cpp's own convert_hf_to_gguf.py (tests/gguf_tools.py fetches it). Its check that the tokenizer is one
    it knows by a hash of its output is skipped: the vocabulary here is trained, and a WordPiece ("bert")
    vocabulary does not use the pre-tokenizer name the hash looks up."""
    import subprocess
    import sys

    from gguf_tools import converter_dir

    if os.path.exists(out):
        return str(out)
    conv = converter_dir()
    script = os.path.join(conv, "convert_hf_to_gguf.py")
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{script!r}, {str(st_dir)!r}, '--outtype', {outtype!r}, '--outfile', {str(out)!r}]\n"
        "from conversion import base\n"
        "base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'default'\n"
        f"runpy.run_path({script!r}, run_name='__main__')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(conv, "gguf-py"), conv]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL)
    return str(out)
