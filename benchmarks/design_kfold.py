"""The design's section-6 code (research_data.md, "K-Fold Cross-Validation" / Implementation), copied verbatim
as the baseline for `bench_kfold.py` (multiclass and multilabel). Only the numpy import was added.
Do not improve this file: it is the yardstick. It is a generator; the design's callers use `list(...)`."""
import numpy as np


def prepare_kfold_splits(comments, labels, num_folds=5, 
                         stratification_type='multiclass', seed=42):
    
    n_samples = len(comments)
    
    if stratification_type == 'multiclass':
        # Convert multi-label to single "super-label" for stratification
        # Each unique combination gets a unique ID
        label_tuples = [tuple(row) for row in labels]
        unique_combos = list(set(label_tuples))
        combo_to_id = {combo: i for i, combo in enumerate(unique_combos)}
        stratify_labels = np.array([combo_to_id[t] for t in label_tuples])
        
        # Use StratifiedKFold
        from sklearn.model_selection import StratifiedKFold
        kfold = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
        
        for train_idx, val_idx in kfold.split(np.zeros(n_samples), stratify_labels):
            yield train_idx, val_idx
    
    elif stratification_type == 'multilabel':
        # Use iterative stratification (better for multi-label)
        try:
            from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
            kfold = MultilabelStratifiedKFold(n_splits=num_folds, shuffle=True, 
                                               random_state=seed)
            for train_idx, val_idx in kfold.split(np.zeros(n_samples), labels):
                yield train_idx, val_idx
        except ImportError:
            print("Warning: iterative-stratification not installed, using multiclass")
            yield from prepare_kfold_splits(comments, labels, num_folds, 
                                            'multiclass', seed)
