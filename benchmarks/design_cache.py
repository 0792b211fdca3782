"""The design's section-4 tokenization cache, re-implemented faithfully as the benchmark baseline.

Copied from `research_data.md` section 4: the key is only the tokenizer name and `max_length`, every comment is
padded to `max_length`, and the dict of int64/float32 tensors is stored with `pickle`. Do not use this code: it
returns stale data when the comments change and `pickle.load` runs code from the cache file.
"""
import hashlib
import os
import pickle
from typing import Dict, List

import numpy as np
import torch


def get_cache_filename(tokenizer_name: str, max_length: int, cache_dir: str) -> str:
    """Generate unique cache filename based on tokenizer and settings."""
    # Create hash of settings for unique filename
    settings_str = f"{tokenizer_name}_{max_length}"
    settings_hash = hashlib.md5(settings_str.encode()).hexdigest()[:8]

    safe_name = tokenizer_name.replace('/', '_')
    filename = f"{safe_name}_maxlen{max_length}_{settings_hash}_tokenized.pkl"

    return os.path.join(cache_dir, filename)


def get_or_create_tokenized_dataset(
    comments: List[str],
    labels: np.ndarray,
    tokenizer,
    max_length: int,
    cache_dir: str
) -> Dict[str, torch.Tensor]:
    """
    Get tokenized dataset from cache or create new.

    This is the MOST IMPORTANT function for performance!
    """
    os.makedirs(cache_dir, exist_ok=True)

    # Generate cache filename
    cache_file = get_cache_filename(
        tokenizer.name_or_path, max_length, cache_dir
    )

    # Try to load from cache
    if os.path.exists(cache_file):
        print(f"📦 Loading tokenized data from cache: {cache_file}")
        with open(cache_file, 'rb') as f:
            cached_data = pickle.load(f)
        print(f"   ✅ Loaded {len(cached_data['input_ids'])} samples in ~2 seconds!")
        return cached_data

    # Cache miss - tokenize from scratch
    print(f"🔄 Tokenizing {len(comments)} texts (this takes ~90 seconds)...")

    # Tokenize all at once (batch tokenization is faster)
    encodings = tokenizer(
        comments,
        padding='max_length',
        truncation=True,
        max_length=max_length,
        return_tensors='pt'
    )

    # Create dataset dictionary
    tokenized_data = {
        'input_ids': encodings['input_ids'],
        'attention_mask': encodings['attention_mask'],
        'labels': torch.tensor(labels, dtype=torch.float32)
    }

    # Save to cache for next time
    print(f"💾 Saving to cache: {cache_file}")
    with open(cache_file, 'wb') as f:
        pickle.dump(tokenized_data, f)

    return tokenized_data
