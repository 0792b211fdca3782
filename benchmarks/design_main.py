"""The design's complete data flow (research_data.md, "Complete Data Flow Summary") as one script, the baseline of
`bench_first_batch.py`: what `python main.py --pipeline ...` runs before its first training step.

Section 1's imports and environment setup as the design has them, section 2's labels, section 3's
`load_and_preprocess_data` as the design writes it (with its example `clean_bangla_text`), section 4's pickle cache
(`design_cache.py`), section 6's k-fold splits (`design_kfold.py`, `stratification_type='multilabel'`:
iterstrat's `MultilabelStratifiedKFold`; `--stratification multiclass` for the design's default), section 7's
class weights, section 8's loaders (`design_loaders.py`), then one epoch over fold 0's training loader touching
each batch's input_ids, attention_mask and labels (no model). Do not improve this file: it is the yardstick.

    python benchmarks/design_main.py --csv DATA.csv --tokenizer DIR --cache-dir DIR [--max-length 128]
        [--batch-size 32] [--num-workers 0]

The last line is machine-readable: `TOTAL <seconds from the top of this file to the end of the epoch>`; before it
`PHASES {...}` (JSON), the seconds of each step, and `END_UNIX <time.time() at the end>`.
"""
import time
T0 = time.perf_counter()   # before any import: the script's own clock starts here (the interpreter started earlier)

# --- Section 1: Imports and Environment Setup (as the design has them) ---
import os
os.environ["TOKENIZERS_PARALLELISM"] = "false"  # MUST be before transformers import!

import torch
from torch.utils.data import Dataset, DataLoader
import pandas as pd
import numpy as np
from transformers import AutoTokenizer
from sklearn.model_selection import KFold
import pickle
import hashlib
from typing import List, Tuple, Optional, Dict

import argparse, json, re, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from design_cache import get_or_create_tokenized_dataset  # noqa: E402  section 4
from design_kfold import prepare_kfold_splits  # noqa: E402  section 6
from design_loaders import create_data_loaders  # noqa: E402  sections 5 and 8
T_IMPORTS = time.perf_counter()

# --- Section 2: Label Configuration ---
LABEL_COLUMNS = ['bully', 'sexual', 'religious', 'threat', 'spam']


# --- Section 3: Data Loading Function (the design's example cleaning and its step-by-step walkthrough) ---
def clean_bangla_text(text: str) -> str:
    """Clean Bangla text for processing."""
    # Remove URLs
    text = re.sub(r'http\S+', '', text)

    # Remove English characters (keep Bangla only)
    # text = re.sub(r'[a-zA-Z]', '', text)  # Uncomment if needed

    # Remove extra whitespace
    text = ' '.join(text.split())

    # ADD YOUR CUSTOM CLEANING HERE
    # Example: Remove specific words
    # text = text.replace('spam_word', '')

    return text.strip()


def load_and_preprocess_data(
    data_path: str,
    text_column: str = 'comment_text',
    label_columns: List[str] = LABEL_COLUMNS,
    clean_text: bool = True
) -> Tuple[List[str], np.ndarray]:
    """
    Load dataset from CSV and preprocess.

    Returns:
        comments: List of text strings
        labels: numpy array of shape (num_samples, num_labels)
    """

    # Step 1: Load CSV
    print(f"📂 Loading data from: {data_path}")
    df = pd.read_csv(data_path)
    print(f"   Loaded {len(df)} samples")

    # Step 2: Validate columns exist
    if text_column not in df.columns:
        raise ValueError(f"Text column '{text_column}' not found!")

    for col in label_columns:
        if col not in df.columns:
            raise ValueError(f"Label column '{col}' not found!")

    # Step 3: Extract text
    comments = df[text_column].astype(str).tolist()

    # Step 4: Extract labels as numpy array
    labels = df[label_columns].values.astype(np.float32)
    # Shape: (num_samples, num_labels) = (44000, 5)

    # Step 5: Optional text cleaning
    if clean_text:
        comments = [clean_bangla_text(text) for text in comments]

    # Step 6: Print statistics
    print(f"\n📊 Label Distribution:")
    for i, col in enumerate(label_columns):
        positive = labels[:, i].sum()
        print(f"   {col}: {positive:.0f} ({positive/len(labels)*100:.1f}%)")

    return comments, labels


# --- Section 7: Class Weight Calculation ---
def calculate_class_weights(labels: np.ndarray) -> torch.Tensor:
    """
    Calculate class weights for imbalanced data.

    Why: Your dataset is imbalanced (threat: 5%, spam: 30%)
         Model will ignore rare classes unless we weight them higher.
    """
    num_samples = len(labels)
    num_labels = labels.shape[1]

    weights = []
    for i in range(num_labels):
        # Count positive samples for this label
        num_positive = labels[:, i].sum()
        num_negative = num_samples - num_positive

        if num_positive == 0:
            weight = 1.0
        else:
            # Weight = num_negative / num_positive
            # Rare classes get higher weight
            weight = num_negative / num_positive

        weights.append(weight)

    return torch.tensor(weights, dtype=torch.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--tokenizer", required=True, help="a tokenizer directory (AutoTokenizer.from_pretrained)")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-workers", type=int, default=0)
    ap.add_argument("--text-column", default="comment")
    ap.add_argument("--num-folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--stratification", default="multilabel", choices=("multiclass", "multilabel"))
    args = ap.parse_args(argv)
    phases, t = {"imports": T_IMPORTS - T0}, time.perf_counter()

    # Step 1: Load CSV
    comments, labels = load_and_preprocess_data(args.csv, text_column=args.text_column, label_columns=LABEL_COLUMNS)
    phases["load"], t = time.perf_counter() - t, time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    phases["tokenizer"], t = time.perf_counter() - t, time.perf_counter()

    # Step 2: Tokenize (with caching!)
    tokenized_data = get_or_create_tokenized_dataset(comments, labels, tokenizer, args.max_length, args.cache_dir)
    phases["tokenize"], t = time.perf_counter() - t, time.perf_counter()

    # Step 3: Split into folds
    splits = list(prepare_kfold_splits(comments, labels, num_folds=args.num_folds,
                                       stratification_type=args.stratification, seed=args.seed))
    phases["folds"], t = time.perf_counter() - t, time.perf_counter()

    # Step 4: Create DataLoaders (fold 0)
    train_idx, val_idx = splits[0]
    train_loader, val_loader = create_data_loaders(tokenized_data, train_idx, val_idx, batch_size=args.batch_size,
                                                   num_workers=args.num_workers)

    # Step 5: Calculate class weights
    pos_weight = calculate_class_weights(labels[train_idx])
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    phases["loaders_weights"], t = time.perf_counter() - t, time.perf_counter()

    # Ready for training: one epoch over fold 0's training loader, touching each batch (no model)
    from bench_common import touch_epoch
    batches, rows, fed, real, t_first = touch_epoch(train_loader)
    end = time.perf_counter()
    phases["first_batch"] = t_first - t
    phases["epoch"] = end - t
    weights = [round(w, 2) for w in pos_weight.tolist()]
    print(f"epoch: {batches} batches, {rows} rows, {fed} tokens fed, {real} real; pos_weight {weights}")
    print("FIRST_BATCH %.4f" % (t_first - T0))
    print("PHASES " + json.dumps({k: round(v, 4) for k, v in phases.items()}))
    print("END_UNIX %.4f" % time.time())   # lets the caller measure the interpreter's exit after the epoch
    print("TOTAL %.4f" % (end - T0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
