"""Baseline for `bench_loaders.py`: the design's sections 5 (`IndexedDataset`) and 8 (`create_data_loaders`), unchanged.

Its input, the design's dict of `padding='max_length'` tensors, comes from the design's section 4 in `design_cache.py`.
"""
from typing import Dict, Tuple
import numpy as np
import torch
from torch.utils.data import Dataset, DataLoader


class IndexedDataset(Dataset):
    """
    PyTorch Dataset that uses indices to access cached data.
    """

    def __init__(self, tokenized_data: Dict[str, torch.Tensor], indices: np.ndarray):
        self.tokenized_data = tokenized_data
        self.indices = indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, idx):
        # Get the actual index from our subset
        real_idx = self.indices[idx]

        return {
            'input_ids': self.tokenized_data['input_ids'][real_idx],
            'attention_mask': self.tokenized_data['attention_mask'][real_idx],
            'labels': self.tokenized_data['labels'][real_idx]
        }


def create_data_loaders(
    tokenized_data: Dict[str, torch.Tensor],
    train_indices: np.ndarray,
    val_indices: np.ndarray,
    batch_size: int = 32,
    num_workers: int = 2
) -> Tuple[DataLoader, DataLoader]:
    """
    Create PyTorch DataLoaders for training and validation.
    """

    train_dataset = IndexedDataset(tokenized_data, train_indices)
    val_dataset = IndexedDataset(tokenized_data, val_indices)

    train_loader = DataLoader(
        train_dataset,
        batch_size=batch_size,
        shuffle=True,           # Shuffle for training
        num_workers=num_workers,
        pin_memory=True         # Faster GPU transfer
    )

    val_loader = DataLoader(
        val_dataset,
        batch_size=batch_size,
        shuffle=False,          # No shuffle for validation
        num_workers=num_workers,
        pin_memory=True
    )

    return train_loader, val_loader
