"""bangla_data: the data layer for Bangla toxic-comment and cyberbullying research.

This file is written by hand (nbdev only updates `__version__`). `import bangla_data` is light: it runs
`bangla_data.env` first, so that `TOKENIZERS_PARALLELISM` is set before anything imports transformers, and
imports nothing else. The public names below are loaded from their modules on first use (PEP 562), so
`bangla_data.prepare` imports the flow's modules, and torch, only when it is touched.
"""
__version__ = "0.1.0"

from .env import BanglaDataError, set_seed  # noqa: F401  (must stay first: sets TOKENIZERS_PARALLELISM)

_PUBLIC = {  # name -> module, in the order of the data flow
    'set_seed': 'env', 'BanglaDataError': 'env',
    'LABEL_COLUMNS': 'labels', 'label_report': 'labels',
    'read_table': 'reading',
    'clean_bangla_text': 'cleaning',
    'duplicate_report': 'duplicates',
    'LoadInfo': 'loading', 'load_and_preprocess_data': 'loading',
    'load_tokenizer': 'tokenizer',
    'SAMPLE_PATH': 'sample', 'sample_tokenizer': 'sample',
    'TokenizedData': 'tokenized',
    'tokenize_to_data': 'tokenize', 'token_length_report': 'tokenize',
    'get_cache_filename': 'store',
    'get_or_create_tokenized_dataset': 'cache',
    'IndexedDataset': 'dataset',
    'prepare_kfold_splits': 'kfold', 'LeakFreeKFold': 'kfold', 'FoldReport': 'kfold', 'fold_report': 'kfold',
    'calculate_class_weights': 'weights',
    'LengthGroupedBatchSampler': 'loaders', 'BatchLoader': 'loaders', 'create_data_loaders': 'loaders',
    'mean_std': 'metrics',
    'Prepared': 'pipeline', 'prepare': 'pipeline',
}
__all__ = list(_PUBLIC)


def __getattr__(name):
    "Load a public name from its module on first use (PEP 562)."
    if name not in _PUBLIC: raise AttributeError(f"module 'bangla_data' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f'{__name__}.{_PUBLIC[name]}'), name)
    globals()[name] = value
    return value


def __dir__(): return sorted(set(globals()) | set(__all__))
