"""Shared fixtures for the integration tests: the real data and tokenizers in `../shared`."""
import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BANGLA_DATA_SHARED", ROOT.parent / "shared"))
CYBERBULLY_CSV = SHARED / "data" / "cyberbully_multilabel" / "comments.csv"
TOXIC_CSV = SHARED / "data" / "toxic_multilabel" / "comments.csv"
CYBERBULLY_LABELS = ["bully", "sexual", "religious", "threat", "spam"]
TOXIC_LABELS = ["vulgar", "hate", "religious", "threat", "troll", "Insult"]
BANGLABERT_DIR = SHARED / "tokenizers" / "banglabert"
MBERT_DIR = SHARED / "tokenizers" / "mbert-cased"


def pytest_sessionstart(session):
    missing = [p for p in (CYBERBULLY_CSV, TOXIC_CSV, BANGLABERT_DIR, MBERT_DIR) if not p.exists()]
    if missing:
        raise pytest.UsageError(f"tests need ../shared beside the project; missing: {', '.join(map(str, missing))} "
                                "(set BANGLA_DATA_SHARED to its location)")


@pytest.fixture(scope="session")
def banglabert():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(BANGLABERT_DIR))


@pytest.fixture(scope="session")
def mbert():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(MBERT_DIR))


def load_real(path, text_column, label_columns):
    "Load a real dataset quietly (no printed summary, no warnings): `(comments, labels)`."
    import warnings
    from bangla_data.loading import load_and_preprocess_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_and_preprocess_data(path, text_column=text_column, label_columns=label_columns, verbose=False)


@pytest.fixture(scope="session")
def cyberbully():
    "The cleaned cyberbullying comments and labels."
    return load_real(CYBERBULLY_CSV, "comment", CYBERBULLY_LABELS)


@pytest.fixture(scope="session")
def toxic():
    "The cleaned toxic-comment texts and labels."
    return load_real(TOXIC_CSV, "text", TOXIC_LABELS)
