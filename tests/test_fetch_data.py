"""`tools/fetch_test_data.py` against a local HTTP server (127.0.0.1, random port) that serves the files of
../shared laid out like raw.githubusercontent.com (repository/commit/path), copied into a temporary folder.

A full fetch into an empty folder gives files identical to ../shared; a second run downloads nothing; a wrong file,
a connection cut halfway and an unreachable server each end in a clear error naming the file, with nothing partial
left behind. The real manifest is used throughout, so ../shared must be there (the files come from it)."""
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, fetch_test_data as ftd

pytestmark = pytest.mark.shared
SCRIPT = ROOT / 'tools' / 'fetch_test_data.py'
DOWNLOADED = [(rel, src, sha) for rel, src, sha in ftd.FILES if not isinstance(src, bytes)]


def _url_path(source):
    return urllib.parse.urlsplit(ftd.url_of(source, 'http://x')).path


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The downloadable files of ../shared under their URL paths."
    root = tmp_path_factory.mktemp('site')
    for rel, source, _ in DOWNLOADED:
        p = root / urllib.parse.unquote(_url_path(source)).lstrip('/')
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED / rel, p)
    return root


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

    def do_GET(self):
        srv = self.server
        srv.requests.append(self.path)
        if self.path in srv.cut:                     # announce the whole file, send half of it, hang up
            body = (srv.root / urllib.parse.unquote(self.path).lstrip('/')).read_bytes()
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2]); self.wfile.flush()
            self.close_connection = True
            return
        if self.path in srv.replace:                 # other content than the pinned file
            body = srv.replace[self.path]
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def server(site):
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), lambda *a: _Handler(*a, directory=str(site)))
    srv.root, srv.requests, srv.cut, srv.replace = site, [], set(), {}
    srv.base_url = f'http://127.0.0.1:{srv.server_address[1]}'
    t = threading.Thread(target=srv.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    t.start()
    yield srv
    srv.shutdown(); srv.server_close(); t.join(5)


def _fetch(dest, srv, **kw):
    log = []
    errors = ftd.fetch(dest, srv.base_url, timeout=10, log=log.append, log_error=log.append, **kw)
    return errors, log


def _leftovers(dest):
    "Temporary files of an interrupted or rejected download."
    return sorted(str(p.relative_to(dest)) for p in Path(dest).rglob('*') if p.is_file() and p.name.endswith('.part'))


def _tree(dest):
    return sorted(str(p.relative_to(dest)) for p in Path(dest).rglob('*') if p.is_file())


def test_manifest_lists_every_file_of_shared_with_its_hash():
    "Every data file and tokenizer file in ../shared is in the manifest, with the hash of the shared copy."
    in_shared = sorted(str(p.relative_to(SHARED)) for p in [*(SHARED / 'tokenizers').rglob('*'), *(SHARED / 'data').glob('*/*')]
                       if p.is_file())
    assert sorted(rel for rel, _, _ in ftd.FILES) == in_shared
    assert ftd.check(SHARED, log=lambda m: None) == []
    for rel, source, sha in ftd.FILES:
        if isinstance(source, bytes): assert hashlib.sha256(source).hexdigest() == sha, rel
        else:
            repo, commit, path = source
            assert len(commit) == 40 and ftd.url_of(source).startswith('https://raw.githubusercontent.com/' + repo), rel


def test_full_fetch_then_nothing_to_do(server, tmp_path):
    dest = tmp_path / 'shared'
    errors, log = _fetch(dest, server)
    assert errors == []
    assert _tree(dest) == sorted(rel for rel, _, _ in ftd.FILES)
    for rel, _, _ in ftd.FILES:
        assert (dest / rel).read_bytes() == (SHARED / rel).read_bytes(), rel
        assert (dest / rel).stat().st_mode & 0o777 == 0o644, rel
    assert len(server.requests) == len(DOWNLOADED) and sum(m.startswith('written') for m in log) == 1
    # a second run: everything is there with the right hash, so nothing is downloaded or written
    server.requests.clear()
    errors, log = _fetch(dest, server)
    assert errors == [] and server.requests == [] and all(m.startswith('ok') for m in log) and len(log) == len(ftd.FILES)
    assert ftd.check(dest, log=lambda m: None) == []


def test_a_wrong_file_is_rejected_and_a_damaged_one_replaced(server, tmp_path):
    dest = tmp_path / 'shared'
    rel, source, sha = DOWNLOADED[2]                                # a tokenizer file
    server.replace[_url_path(source)] = b'{"not": "the pinned file"}\n'
    errors, _ = _fetch(dest, server)
    got = hashlib.sha256(b'{"not": "the pinned file"}\n').hexdigest()
    assert len(errors) == 1 and str(dest / rel) in errors[0] and sha in errors[0] and got in errors[0], errors
    assert not (dest / rel).exists() and _leftovers(dest) == []
    assert len(_tree(dest)) == len(ftd.FILES) - 1
    # the server fixed, a damaged copy in place: it is replaced by the pinned file, the rest is left alone
    server.replace.clear(); server.requests.clear()
    (dest / DOWNLOADED[0][0]).write_bytes(b'comment,bully\n')
    assert _fetch(dest, server)[0] == []
    assert sorted(server.requests) == sorted([_url_path(source), _url_path(DOWNLOADED[0][1])])
    assert ftd.check(dest, log=lambda m: None) == [] and _leftovers(dest) == []


def test_a_connection_cut_halfway_leaves_nothing(server, tmp_path):
    dest = tmp_path / 'shared'
    rel, source, sha = DOWNLOADED[0]                                # the 1.7 MB cyberbullying CSV
    server.cut.add(_url_path(source))
    errors, _ = _fetch(dest, server)
    size = (SHARED / rel).stat().st_size
    assert len(errors) == 1 and str(dest / rel) in errors[0] and f'of {size:,} bytes' in errors[0], errors
    assert not (dest / rel).exists() and _leftovers(dest) == [] and list((dest / rel).parent.iterdir()) == []
    assert len(_tree(dest)) == len(ftd.FILES) - 1


def test_command_line_exit_status_and_environment(server, tmp_path):
    "The script as CI or a developer runs it: $BANGLA_DATA_SHARED and $BANGLA_DATA_BASE_URL, exit status, messages."
    dest = tmp_path / 'shared'
    rel, source, sha = DOWNLOADED[-1]
    wrong = b'[PAD]\n'
    server.replace[_url_path(source)] = wrong
    env = {**os.environ, 'BANGLA_DATA_SHARED': str(dest), 'BANGLA_DATA_BASE_URL': server.base_url}
    r = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f'{dest / rel}: wrong sha256: expected {sha}, got {hashlib.sha256(wrong).hexdigest()}' in r.stderr, r.stderr
    assert '1 of 9 files could not be fetched' in r.stderr and not (dest / rel).exists() and _leftovers(dest) == []
    r = subprocess.run([sys.executable, str(SCRIPT), '--check'], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f'{dest / rel}: missing' in r.stdout and 'tools/fetch_test_data.py' in r.stdout
    server.replace.clear()
    r = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and 'all 9 files present and correct' in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, str(SCRIPT), '--check'], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    with socket.socket() as s:                                      # a port on which nothing listens
        s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    dest = tmp_path / 'shared'
    log = []
    errors = ftd.fetch(dest, f'http://127.0.0.1:{port}', timeout=5, log=log.append, log_error=log.append)
    assert len(errors) == len(DOWNLOADED)
    assert 'cannot reach the server' in errors[0] and str(dest / DOWNLOADED[0][0]) in errors[0] and f':{port}/' in errors[0]
    assert all('not tried (server unreachable)' in e for e in errors[1:])   # gives up after the first, no 8 timeouts
    assert _tree(dest) == ['tokenizers/mbert-cased/tokenizer_config.json'] and _leftovers(dest) == []
