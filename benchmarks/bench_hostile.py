"""Hostile input files (issue 23 item 5): build each one, run `bangla-data load FILE` on it in a subprocess under a
time and an address-space limit, and print a table: attack -> outcome (the error's first line), seconds, peak MB.

    .venv/bin/python benchmarks/bench_hostile.py                       # this tree
    .venv/bin/python benchmarks/bench_hostile.py --tree /tmp/h2_before # another checkout (e.g. a git worktree of HEAD)
    .venv/bin/python benchmarks/bench_hostile.py --only utf32,bare_cr  # some attacks

The builders are also used by tests/test_hostile_files.py (with smaller sizes where the property still shows).
"""
import argparse, io, json, os, resource, subprocess, sys, tempfile, threading, time, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = 'text,bully\n'


def _template_xlsx() -> dict:
    "The members of a minimal one-sheet .xlsx written by pandas (openpyxl), sheet and strings left out."
    import pandas as pd
    buf = io.BytesIO()
    pd.DataFrame({'text': ['x'], 'bully': [0]}).to_excel(buf, index=False)
    with zipfile.ZipFile(buf) as z:
        return {n: z.read(n) for n in z.namelist() if n not in ('xl/worksheets/sheet1.xml', 'xl/sharedStrings.xml')}


def write_xlsx(path, rows, dimension=None):
    "An .xlsx whose sheet1 is the XML chunks `rows` yields (inline strings), streamed into the zip at level 9."
    members = _template_xlsx()
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for n, b in members.items(): z.writestr(n, b)
        with z.open('xl/worksheets/sheet1.xml', 'w', force_zip64=True) as f:
            f.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.'
                    b'openxmlformats.org/spreadsheetml/2006/main">')
            if dimension: f.write(f'<dimension ref="{dimension}"/>'.encode())
            f.write(b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>text</t></is></c>'
                    b'<c r="B1" t="inlineStr"><is><t>bully</t></is></c></row>')
            for chunk in rows: f.write(chunk)
            f.write(b'</sheetData></worksheet>')
    return path


def _big_cell_rows(n_chars, chunk=1 << 22):
    "XML of one data row whose text cell holds `n_chars` characters."
    yield b'<row r="2"><c r="A2" t="inlineStr"><is><t>'
    for i in range(0, n_chars, chunk): yield b'a' * min(chunk, n_chars - i)
    yield b'</t></is></c><c r="B2"><v>0</v></c></row>'


def _many_rows(n, per=100_000):
    "XML of `n` data rows (no row numbers, as some writers do), `per` rows a chunk."
    row = b'<row><c t="inlineStr"><is><t>\xe0\xa6\x95</t></is></c><c><v>0</v></c></row>'
    for i in range(0, n, per): yield row * min(per, n - i)


def build(name, d, scale=1.0):
    "Write the hostile file `name` into directory `d` (sizes times `scale`); its path and the extra CLI arguments."
    d = Path(d)
    big = lambda n: max(int(n * scale), 1)
    if name in ('cols_1m', 'cols_50k'):
        n = big(1_000_000 if name == 'cols_1m' else 50_000)
        p = d / f'{name}.csv'
        p.write_text('text,bully,' + ','.join(f'c{i}' for i in range(n)) + '\nক,0' + ',0' * n + '\n')
    elif name == 'xlsx_cell_400m': p = write_xlsx(d / f'{name}.xlsx', _big_cell_rows(big(400_000_000)))
    elif name == 'xlsx_rows_10m': p = write_xlsx(d / f'{name}.xlsx', _many_rows(big(10_000_000)))
    elif name == 'csv_cell_33m':
        p = d / f'{name}.csv'
        with p.open('w', encoding='utf-8') as f:
            f.write(HEADER + 'ক,0\n"')
            n, word = big(33_000_000), 'আমি ভাত '
            for _ in range(n // len(word)): f.write(word)
            f.write('",1\nখ,0\n')
    elif name == 'xlsx_corrupt':
        p = write_xlsx(d / f'{name}.xlsx', [b'<row r="2"><c r="A2" t="inlineStr"><is><t>x</t></is></c></row>'])
        b = bytearray(p.read_bytes()); b[len(b) // 2:] = b'\0' * (len(b) - len(b) // 2); p.write_bytes(bytes(b))
    elif name == 'zip_not_xlsx':
        p = d / f'{name}.xlsx'
        with zipfile.ZipFile(p, 'w') as z: z.writestr('notes.txt', 'text,bully\nক,0\n')
    elif name == 'parquet_bytes':
        import pandas as pd
        p = d / f'{name}.parquet'
        pd.DataFrame({'text': [b'\xe0\xa6\x95', b'x'], 'bully': [0, 1]}).to_parquet(p)
    elif name in ('jsonl_list', 'jsonl_dict', 'jsonl_nested'):
        v = {'jsonl_list': ['ক', 'খ'], 'jsonl_dict': {'a': 'ক'}, 'jsonl_nested': {'a': [{'b': ['ক']}]}}[name]
        p = d / f'{name}.jsonl'
        p.write_text(json.dumps({'text': 'গ', 'bully': 0}, ensure_ascii=False) + '\n'
                     + json.dumps({'text': v, 'bully': 1}, ensure_ascii=False) + '\n', encoding='utf-8')
    elif name == 'jsonl_dup_key':
        p = d / f'{name}.jsonl'
        p.write_text('{"text": "গ", "bully": 0}\n{"text": "ক", "bully": 1, "bully": 0}\n', encoding='utf-8')
    elif name == 'utf32':
        p = d / f'{name}.csv'
        p.write_bytes((HEADER + 'ক,0\nখ,1\n').encode('utf-32'))
    elif name == 'bare_cr':
        p = d / f'{name}.csv'
        p.write_bytes((HEADER + 'ক খ\rগ,1\nঘ,0\n').encode('utf-8'))
    else: raise KeyError(name)
    return p, ['--text-column', 'text', '--labels', 'bully']


ATTACKS = {   # name -> what it is, as the issue words it
    'cols_1m': 'CSV header of 1,000,000 columns', 'cols_50k': 'CSV header of 50,000 columns',
    'xlsx_cell_400m': 'xlsx: one 400M-character cell', 'xlsx_rows_10m': 'xlsx of 10M rows',
    'csv_cell_33m': 'CSV with a 33M-character cell', 'xlsx_corrupt': 'corrupt xlsx (second half zeroed)',
    'zip_not_xlsx': 'a zip that is not an xlsx', 'parquet_bytes': 'Parquet: text column of bytes',
    'jsonl_list': 'JSONL: text is a list', 'jsonl_dict': 'JSONL: text is an object',
    'jsonl_nested': 'JSONL: text is a nested object', 'jsonl_dup_key': 'JSONL: a duplicated key ("bully": 1, "bully": 0)',
    'utf32': 'UTF-32 CSV (with BOM)', 'bare_cr': 'bare \\r inside an unquoted comment'}


def run_limited(cmd, timeout=120, mem_bytes=2 << 30, cwd=None, env=None):
    "Run `cmd` under RLIMIT_AS=`mem_bytes`, killed after `timeout` s: (returncode or None, stdout, stderr, s, peak MB)."
    def limit(): resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, preexec_fn=limit, cwd=cwd, env=env)
        timer = threading.Timer(timeout, p.kill); timer.start()
        _, status, usage = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t0
        timer.cancel(); p.returncode = os.waitstatus_to_exitcode(status)
        timed_out = secs >= timeout
        out.seek(0); err.seek(0)
        return (None if timed_out else p.returncode, out.read().decode('utf-8', 'replace'),
                err.read().decode('utf-8', 'replace'), secs, usage.ru_maxrss / 1024)


def load_cmd(path, args, tree=ROOT):
    ("The `bangla-data load` command line for `path`, importing bangla_data from `tree` (run it with `cwd=tree`: "
     "`python -c` puts the working directory first on sys.path), and its environment.")
    code = 'import sys; from bangla_data.cli import main; sys.exit(main(sys.argv[1:]))'
    env = {**os.environ, 'PYTHONPATH': str(tree)}
    return [sys.executable, '-c', code, 'load', str(path), *args, '--json'], env


def outcome(rc, out, err, limit_s):
    "The outcome in a few words: the error's first line, 'loaded', a timeout or a crash."
    if rc is None: return f'TIMEOUT (killed after {limit_s:.0f} s)'
    lines = [l for l in err.strip().splitlines() if l.strip()]
    if rc == 0:
        try: info = json.loads(out)
        except ValueError: return 'loaded (exit 0)'
        return f"loaded silently (exit 0): {info['rows_kept']} of {info['rows_read']} rows kept" + \
            (f", first comment {info.get('first')!r}" if info.get('first') else '')
    if lines and lines[0].startswith('bangla-data: error:'): return 'BanglaDataError: ' + lines[0][20:]
    return f'exit {rc}: ' + (lines[-1] if lines else '(no output)')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tree', default=str(ROOT), help='the checkout whose bangla_data runs (default: this one)')
    ap.add_argument('--only', default='', help='comma-separated attacks (default: all): ' + ','.join(ATTACKS))
    ap.add_argument('--timeout', type=float, default=120)
    ap.add_argument('--mem-gb', type=float, default=2)
    ap.add_argument('--width', type=int, default=150, help='cut outcomes to this many characters')
    ap.add_argument('--json', help='also write the rows to this JSON file')
    a = ap.parse_args(argv)
    names = [n for n in a.only.split(',') if n] or list(ATTACKS)
    rows = []
    print(f"tree: {a.tree}; limits: {a.timeout:.0f} s, {a.mem_gb:g} GB address space\n")
    print(f"| attack | file | outcome | s | peak MB |\n|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as d:
        for n in names:
            path, args = build(n, d)
            cmd, env = load_cmd(path, args, a.tree)
            rc, out, err, secs, mb = run_limited(cmd, a.timeout, int(a.mem_gb * (1 << 30)), cwd=a.tree, env=env)
            what = outcome(rc, out, err, a.timeout).replace(str(path), path.name).replace('|', '\\|')
            what = what if len(what) <= a.width else what[:a.width - 1] + '…'
            size = path.stat().st_size
            rows.append(dict(attack=n, what=ATTACKS[n], size=size, outcome=what, seconds=round(secs, 1), peak_mb=round(mb)))
            print(f"| {ATTACKS[n]} | {size / 1e6:.2f} MB | {what} | {secs:.1f} | {mb:.0f} |", flush=True)
            path.unlink()
    if a.json: Path(a.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding='utf-8')


if __name__ == '__main__': main()
