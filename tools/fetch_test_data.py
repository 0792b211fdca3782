#!/usr/bin/env python3
"""Fetch the real datasets and tokenizers the integration tests read (what `../shared` holds beside the project).

    python tools/fetch_test_data.py               # into $BANGLA_DATA_SHARED, or ../shared next to the project
    python tools/fetch_test_data.py --dest DIR    # anywhere else (then set BANGLA_DATA_SHARED=DIR for the tests)
    python tools/fetch_test_data.py --check       # only verify what is there; no network

Every file comes from the public GitHub repository and commit that `../shared/data/README.md` names, from
raw.githubusercontent.com (`--base-url` or `$BANGLA_DATA_BASE_URL` point elsewhere: a mirror, or a local test
server); the one file this project wrote itself (mBERT's `tokenizer_config.json`) is written from its content below.
Each file is checked against its sha256 before it appears under its name: it is downloaded into a temporary file in
its destination folder and renamed into place only when the hash matches, so a wrong file or a cut connection leaves
nothing behind. Files already present with the right hash are not downloaded again. Exit status 1 if any file failed.
Standard library only.
"""
import argparse, hashlib, http.client, os, sys, tempfile, urllib.error, urllib.parse, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASE_URL = 'https://raw.githubusercontent.com'

_CYBERBULLY = ('SaifSiddique009/Finetune-Bangla-BERT-on-Bangla-Cyber-Bullying-Data', '5f5323e360e717eb6990f9b3d5721a5c270bd657')
_TOXIC = ('deepu099cse/Multi-Labeled-Bengali-Toxic-Comments-Classification', 'cefc08983b050d1f5aad55ecc64def33461781d0')
_BANGLABERT = ('Benjamin-GitHub/bangla_cyberbullying_dl', 'a406dba27b1ce98de44811d1422a69e2bec00cea')
_BLINGFIRE = ('microsoft/BlingFire', '18e9a19e586095fb60d629fa850fb610d5bca605')

# (destination relative to the shared folder, (repository, commit, path) or the file's bytes, sha256)
FILES = [
    ('data/cyberbully_multilabel/comments.csv', (*_CYBERBULLY, 'data/1_Multilablel_Cyberbully_Data.csv'),
     'ab115c3c722144499ee96d88ef48ba5c82d749031d7ab95eae464b3bb3315a47'),
    ('data/toxic_multilabel/comments.csv', (*_TOXIC, 'Dataset/Multi_labeled_toxic_comments.csv'),
     'ca8b928e2cb6d8d34220572330ae024c8a638264425927697d26d00dd899fb7f'),
    *[(f'tokenizers/banglabert/{name}', (*_BANGLABERT, f'models/banglabert_cyberbullying/{name}'), sha) for name, sha in [
        ('config.json', '6c8f4a00a19f48e526df5ee3546ce1dee6b2f7becdab42d2a5e0e9efb4b90b6e'),
        ('special_tokens_map.json', 'b6d346be366a7d1d48332dbc9fdf3bf8960b5d879522b7799ddba59e76237ee3'),
        ('tokenizer.json', '766c76b2cc196b04ea6a8b775fc7e7d0702c57b22c8d6d6e799f8ad973e64630'),
        ('tokenizer_config.json', '8c80c9856d581b3d7c2e680c05e1c306f43fff806b10993f955f481410b51e18'),
        ('vocab.txt', '3914b2a56901adf9a8ec771a52291a45421bd7bc5c13ed5154335e2d065bf1b6')]],
    ('tokenizers/mbert-cased/vocab.txt', (*_BLINGFIRE, 'ldbsrc/bert_multi_cased/vocab.txt'),
     'fe0fda7c425b48c516fc8f160d594c8022a0808447475c1a7c6d6479763f310c'),
    ('tokenizers/mbert-cased/tokenizer_config.json',   # written by this project, not downloaded
     b'{"tokenizer_class": "BertTokenizer", "do_lower_case": false, "tokenize_chinese_chars": true, '
     b'"strip_accents": null, "model_max_length": 512}\n',
     '2df10e1fd7e8ee97cf1d01e17c91cd2d362a612bd79a96022cddd368122bf574'),
]
FETCH_HINT = ("run `python tools/fetch_test_data.py`, or put the project's `shared/` folder beside the clone "
              "(or set BANGLA_DATA_SHARED to where it is)")


class FetchError(Exception): pass
class Unreachable(FetchError): pass


def default_dest() -> Path:
    return Path(os.environ.get('BANGLA_DATA_SHARED') or ROOT.parent / 'shared')


def missing_files(dest) -> list:
    "Destinations (relative) of the manifest's files that are not in `dest`; cheap (no hashing)."
    return [rel for rel, _, _ in FILES if not (Path(dest) / rel).is_file()]


def url_of(source, base_url=DEFAULT_BASE_URL) -> str:
    repo, commit, path = source
    return f"{base_url.rstrip('/')}/{repo}/{commit}/{urllib.parse.quote(path)}"


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''): h.update(chunk)
    return h.hexdigest()


def _install(target: Path, expected: str, write_to):
    "Call `write_to(f)` on a temporary file beside `target`; rename it to `target` only if its sha256 is `expected`."
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f'.{target.name}.', suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as f:
            h = write_to(f)
            f.flush(); os.fsync(f.fileno())
        if h.hexdigest() != expected:
            raise FetchError(f"wrong sha256: expected {expected}, got {h.hexdigest()}; nothing written")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp): os.unlink(tmp)


def _content(data: bytes):
    "A writer for `_install` that writes `data`."
    def write_to(f):
        f.write(data)
        return hashlib.sha256(data)
    return write_to


def _download(url, timeout):
    "A writer for `_install` that streams `url` into the file, hashing as it goes."
    def write_to(f):
        h, n, expected_len = hashlib.sha256(), 0, None
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                expected_len = r.headers.get('Content-Length')
                for chunk in iter(lambda: r.read(1 << 16), b''):
                    f.write(chunk); h.update(chunk); n += len(chunk)
        except urllib.error.HTTPError as e:
            raise FetchError(f"HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise Unreachable(f"cannot reach the server: {e.reason}") from None
        except TimeoutError:
            raise FetchError(f"no data for {timeout:g} s") from None
        except (OSError, http.client.HTTPException) as e:   # e.g. IncompleteRead, a reset connection
            raise FetchError(f"download failed after {n:,} bytes: {e!r}") from None
        if expected_len is not None and n != int(expected_len):
            raise FetchError(f"connection closed after {n:,} of {int(expected_len):,} bytes")
        return h
    return write_to


def _err(msg): print(msg, file=sys.stderr)


def fetch(dest=None, base_url=None, timeout=60.0, log=print, log_error=_err) -> list:
    """Bring every file of the manifest into `dest`; return the list of error messages (empty: all there).
    Stops trying to download after the first file whose server cannot be reached."""
    dest = Path(dest) if dest else default_dest()
    base_url = base_url or os.environ.get('BANGLA_DATA_BASE_URL') or DEFAULT_BASE_URL
    errors, unreachable = [], False
    for rel, source, sha in FILES:
        target = dest / rel
        if target.is_file() and sha256_of(target) == sha:
            log(f"ok          {rel}"); continue
        written_here = isinstance(source, bytes)
        if unreachable and not written_here:
            errors.append(f"{target}: not tried (server unreachable)"); continue
        origin = 'written by this script' if written_here else url_of(source, base_url)
        try:
            _install(target, sha, _content(source) if written_here else _download(origin, timeout))
            log(f"{'written' if written_here else 'downloaded':<12}{rel}")
        except (FetchError, OSError) as e:
            msg = f"{target}: {e if isinstance(e, FetchError) else f'cannot write: {e}'} ({origin})"
            errors.append(msg); log_error(f"FAILED      {msg}")
            unreachable = unreachable or isinstance(e, Unreachable)
    return errors


def check(dest=None, log=print) -> list:
    "Verify the files in `dest` without any network; return the list of problems."
    dest = Path(dest) if dest else default_dest()
    problems = []
    for rel, _, sha in FILES:
        p = dest / rel
        if not p.is_file(): problems.append(f"{p}: missing")
        elif (got := sha256_of(p)) != sha: problems.append(f"{p}: wrong sha256: expected {sha}, got {got}")
    for m in problems: log(m)
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--dest', type=Path, help='folder to fill (default: $BANGLA_DATA_SHARED, or ../shared next to the project)')
    ap.add_argument('--base-url', help=f'where to download from (default: $BANGLA_DATA_BASE_URL or {DEFAULT_BASE_URL})')
    ap.add_argument('--timeout', type=float, default=60.0, help='seconds to wait on a stalled connection (default 60)')
    ap.add_argument('--check', action='store_true', help='only verify the files present (sha256); download nothing')
    a = ap.parse_args(argv)
    dest = a.dest or default_dest()
    if a.check:
        problems = check(dest)
        print(f"{dest}: {len(FILES) - len(problems)} of {len(FILES)} files present and correct"
              + (f"; {FETCH_HINT}" if problems else ''))
        return 1 if problems else 0
    errors = fetch(dest, a.base_url, a.timeout)
    if errors:
        _err(f"{len(errors)} of {len(FILES)} files could not be fetched into {dest}; nothing partial was left there")
        return 1
    print(f"{dest}: all {len(FILES)} files present and correct")
    return 0


if __name__ == '__main__':
    sys.exit(main())
