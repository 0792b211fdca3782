"""`bangla_data.normalizer.normalize_bangla` against the csebuetnlp normalizer itself (the `dev` extra installs it):
identical on every distinct text of both real datasets and on random strings made of the characters its rules touch.

The one intended difference, ftfy's mojibake repair (ftfy's `fix_encoding` step), is excluded from the random strings
(the strings it would change are skipped) and shown separately.
"""
import random
import ftfy                                       # installed with the reference (6.0.3)
import pandas as pd
import pytest
from normalizer import normalize as reference   # csebuetnlp-normalizer 1.0.0 (dev extra)
from normalizer import const as reference_const
from bangla_data.normalizer import latin_base_letters, looks_like_mojibake, normalize_bangla
from conftest import CYBERBULLY_CSV, TOXIC_CSV


def test_latin_table_is_the_references():
    assert str.maketrans(latin_base_letters()) == reference_const.CHAR_REPLACEMENTS


@pytest.mark.shared
@pytest.mark.parametrize("path, column", [(CYBERBULLY_CSV, "comment"), (TOXIC_CSV, "text")])
def test_identical_on_real_data(path, column):
    texts = list(dict.fromkeys(pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)[column]))
    assert len(texts) > 10_000
    differ = [(t, reference(t), normalize_bangla(t)) for t in texts if reference(t) != normalize_bangla(t)]
    assert differ == [], f"{len(differ)} of {len(texts)} texts differ, e.g. {differ[:3]}"
    # the reference's mojibake repair (not reproduced) has nothing to repair in either file
    assert not any(looks_like_mojibake(t) for t in texts)


ALPHABET = (list("কখগয়ড়ঢ়ব়োৗঁো্\u200d\u200cরযঅা ৷।০১২ aZé&;#<>\n\r\t\x85\x92\x1b[31m")
            + list("\u2028\u00a0\u00ad\u200b\u2060\ufeff’‘“”„…«»–—ﬁＡ１　\u02bc´`\"'😯🍷🇧🇩")
            + ["&amp;", "&AMP;", "&#39;", "&#x27;", "&nbsp;", "&lt;", "&#2453;", "\ud83d\ude00", "Š", "Ý", "ǰ", "ø", "ǅ"])


def test_identical_on_random_strings():
    rng, checked, differ = random.Random(0), 0, []
    for _ in range(100_000):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        if ftfy.fix_text(s, normalization="NFC") != ftfy.fix_text(s, normalization="NFC", fix_encoding=False):
            continue                                  # the reference's mojibake repair, not reproduced
        checked += 1
        if reference(s) != normalize_bangla(s): differ.append((s, reference(s), normalize_bangla(s)))
    assert checked > 90_000 and differ == [], differ[:5]


def test_mojibake_is_found_not_repaired():
    broken = "আমি ভালো".encode().decode("latin-1")
    assert reference(broken) == "আমি ভালো"                 # ftfy guesses the mis-decoding back
    assert looks_like_mojibake(broken) and normalize_bangla(broken) != "আমি ভালো"
