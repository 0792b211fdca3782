"""Real Unix users for the shared-cache tests: a victim and an attacker (or a trusted colleague) in one group, a
Python both can run, and a directory to work in. Creating users needs root (as in CI); `why_not()` says what is
missing elsewhere.

The test's own Python usually lives where other users cannot enter (a venv under /root), so `Lab` builds a runtime
they can run: hard links (`cp -al`; a copy across file systems) of the interpreter's prefix — unless the user can
already run it — and of the venv's site-packages, plus a copy of the `bangla_data` package under test (`pkg_root`,
so the same harness measures the code before a change too).
"""
import grp, json, os, pwd, secrets, shutil, stat, subprocess, sys, sysconfig, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / 'shared_cache_script.py'
TOOLS = ('useradd', 'groupadd', 'userdel', 'groupdel', 'setpriv')


def why_not() -> str:
    "'' if two users and a group can be made here, else why not (for a skip reason)."
    if not hasattr(os, 'geteuid') or os.geteuid() != 0:
        return 'needs root: the test creates two Unix users and a group (useradd, groupadd) to attack a shared cache'
    missing = [t for t in TOOLS if not shutil.which(t)]
    return f"needs {', '.join(missing)} (util-linux, passwd) to create users and run code as them" if missing else ''


def _link_copy(src: Path, dst: Path):
    "Hard-link copy of the tree `src` at `dst` (fast, no space), else a plain copy (another file system)."
    r = subprocess.run(['cp', '-al', str(src), str(dst)], capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, symlinks=True)


class Lab:
    "A victim and an attacker in a shared group, a runtime both can run, and a world-searchable base directory."
    def __init__(self, pkg_root=ROOT, copy_python=False):
        self.pkg_root, self.copy_python, tag = Path(pkg_root), copy_python, secrets.token_hex(3)
        self.group, self.victim, self.attacker = f'bdl{tag}', f'bdv{tag}', f'bda{tag}'
        self.base = Path(tempfile.mkdtemp(prefix='bangla-lab-'))
        os.chmod(self.base, 0o755)
        self.created = []

    def __enter__(self):
        try: self.create()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc): self.remove()

    def create(self):
        "Make the group and the two users (each with a private group and a home of their own), then the runtime."
        subprocess.run(['groupadd', self.group], check=True, capture_output=True)
        self.created.append(('group', self.group))
        for name in (self.victim, self.attacker):
            home = self.base / 'home' / name
            home.parent.mkdir(exist_ok=True, mode=0o755)
            subprocess.run(['useradd', '-M', '-U', '-d', str(home), '-s', '/bin/sh', '-G', self.group, name],
                           check=True, capture_output=True)
            self.created.append(('user', name))
            home.mkdir(mode=0o700)
            os.chown(home, self.uid(name), self.gid(name))
        self.python, self.env = self._runtime()

    def remove(self):
        "Delete the users and the group (and their private groups), then the base directory."
        for kind, name in reversed(self.created):
            if kind == 'user': subprocess.run(['userdel', name], capture_output=True)
            else: subprocess.run(['groupdel', name], capture_output=True)
        self.created = []
        shutil.rmtree(self.base, ignore_errors=True)

    def uid(self, name): return pwd.getpwnam(name).pw_uid
    def gid(self, name): return pwd.getpwnam(name).pw_gid
    def lab_gid(self): return grp.getgrnam(self.group).gr_gid

    def _as(self, name) -> list:
        return ['setpriv', f'--reuid={self.uid(name)}', f'--regid={self.gid(name)}', '--init-groups', '--']

    def _runtime(self) -> tuple:
        "`(python argv, env)`: an interpreter the users can run, this venv's packages, and the package under test."
        rt = self.base / 'runtime'
        rt.mkdir(mode=0o755)
        exe, env = os.path.realpath(sys._base_executable), {}
        runs = subprocess.run(self._as(self.victim) + [exe, '-c', 'pass'], capture_output=True).returncode == 0
        if self.copy_python or not runs:
            prefix = Path(sys.base_prefix)
            _link_copy(prefix, rt / 'python')
            exe = str(rt / 'python' / os.path.relpath(exe, prefix))
            env['LD_LIBRARY_PATH'] = str(rt / 'python' / 'lib')
        _link_copy(Path(sysconfig.get_paths()['purelib']), rt / 'site')
        for p in (rt / 'site').glob('__editable__*'): p.unlink()
        shutil.copytree(self.pkg_root / 'bangla_data', rt / 'pkg' / 'bangla_data',
                        ignore=shutil.ignore_patterns('__pycache__'))
        shutil.copy(SCRIPT, rt / SCRIPT.name)
        for d, _, files in os.walk(rt):     # directories are new; files are hard links: their modes stay as they are
            os.chmod(d, os.stat(d).st_mode | 0o555)
            if d.startswith(str(rt / 'pkg')) or d == str(rt):
                for f in files: os.chmod(os.path.join(d, f), 0o644)
        env.update(PATH='/usr/local/bin:/usr/bin:/bin', PYTHONPATH=f"{rt / 'pkg'}:{rt / 'site'}", LANG='C.UTF-8',
                   PYTHONDONTWRITEBYTECODE='1', PYTHONNOUSERSITE='1', HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1',
                   TOKENIZERS_PARALLELISM='false', OMP_NUM_THREADS='1', MPLBACKEND='Agg')
        return [exe, str(rt / SCRIPT.name)], env

    def run(self, name, action, timeout=600, trusted=None, **args) -> dict:
        ("Run `shared_cache_script.py ACTION` as user `name`; its JSON result, with `seconds` of wall time, or "
         "`{'hang': seconds}` if it ran out of time, or `{'error': ...}`. `trusted`: $BANGLA_DATA_TRUSTED_CACHE.")
        env = {**self.env, 'HOME': str(self.base / 'home' / name), 'USER': name}
        if trusted is not None: env['BANGLA_DATA_TRUSTED_CACHE'] = str(trusted)
        cmd = self._as(name) + self.python + [action, json.dumps(args, default=str)]
        import time
        t = time.time()
        try: r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(self.base))
        except subprocess.TimeoutExpired: return dict(hang=round(time.time() - t, 1))
        wall = round(time.time() - t, 2)
        if r.returncode != 0: return dict(error=(r.stderr or r.stdout)[-3000:], wall=wall)
        return {**json.loads(r.stdout.strip().splitlines()[-1]), 'wall': wall}

    def mkdir(self, name, mode, owner='root', group=None) -> Path:
        "A directory `name` in the base directory with `mode`, owned by `owner` and `group` (default: the lab's)."
        p = self.base / name
        p.mkdir()
        os.chown(p, 0 if owner == 'root' else self.uid(owner), self.lab_gid() if group is None else group)
        os.chmod(p, mode)
        return p


# ----------------------------------------------------------------------------------------------- the attacks
# Each scenario sets up a cache, lets the attacker (or a colleague) act, runs the victim, and returns what happened:
# the victim's `prepare` result (`run`: statuses, wrong labels, triggers, leaked rows, digest, warnings, seconds) and
# `cache ls` (`ls`). tests/test_shared_cache.py asserts on them; the before/after table of issue 23 was made with them.

def tampered_copies(lab, args) -> dict:
    "The attacker's scratch cache with the victim's entry, cleaned texts and splits, tampered, checksums recomputed."
    scratch = lab.mkdir('scratch', 0o755, owner=lab.attacker)
    r = lab.run(lab.attacker, 'tamper', scratch=scratch, **args)
    assert 'entry' in r, r
    return dict(scratch=str(scratch), entry=r['entry'])


def swap_attack(lab, args, tampered, items, name) -> dict:
    ("A group-writable cache (2775, the lab's group): the victim runs, the attacker renames `items` ('entry', "
     "'cleaned', 'splits') away and puts tampered copies in their place, the victim runs again.")
    cache = lab.mkdir(name, 0o2775)
    cold = lab.run(lab.victim, 'prepare', cache=cache, **args)
    names = [tampered['entry'] if i == 'entry' else i for i in items]
    moved = lab.run(lab.attacker, 'move', cache=cache, scratch=tampered['scratch'], items=names)
    return dict(cache=cache, cold=cold, moved=moved, run=lab.run(lab.victim, 'prepare', cache=cache, **args),
                ls=lab.run(lab.victim, 'ls', cache=cache), items=names)


def plant_attack(lab, args, tampered, name, names=None) -> dict:
    ("A world-writable sticky directory (1777, like /tmp): the attacker plants the tampered entry and split record "
     "(or `names`) before the victim's first run.")
    cache = lab.mkdir(name, 0o1777, group=0)
    names = names or [tampered['entry'], 'splits']   # (tampered cleaned texts change the other keys: planted alone)
    moved = lab.run(lab.attacker, 'move', cache=cache, scratch=tampered['scratch'], items=names)
    return dict(cache=cache, moved=moved, run=lab.run(lab.victim, 'prepare', cache=cache, **args),
                ls=lab.run(lab.victim, 'ls', cache=cache), items=names)


def stray_names(lab, args, name) -> dict:
    "The victim's own cache holding an empty `.trash-x` and a `.tmp-<20 digits>-a-b` directory: a cold run, ls, clear."
    cache = lab.mkdir(name, 0o700, owner=lab.victim)
    lab.run(lab.victim, 'junk', cache=cache, files=['.trash-x'], dirs=['.tmp-99999999999999999999-a-b'])
    run = lab.run(lab.victim, 'prepare', cache=cache, **args)
    return dict(cache=cache, run=run, ls=lab.run(lab.victim, 'ls', cache=cache),
                clear=lab.run(lab.victim, 'clear', cache=cache), left=sorted(os.listdir(cache)))


def fifo_names(lab, args, name, timeout=60) -> dict:
    "The victim's warm cache with FIFOs as its entry's `manifest.json` and its cleaned record: a run and ls (timed)."
    cache = lab.mkdir(name, 0o700, owner=lab.victim)
    cold = lab.run(lab.victim, 'prepare', cache=cache, **args)
    lab.run(lab.victim, 'junk', cache=cache, fifos=['*_tokenized/manifest.json', 'cleaned/*.json'])
    return dict(cache=cache, cold=cold, run=lab.run(lab.victim, 'prepare', timeout=timeout, cache=cache, **args),
                ls=lab.run(lab.victim, 'ls', timeout=timeout, cache=cache))


def leftover_files(lab, args, name) -> dict:
    ("Temporary files a killed write left in a record directory (two hours old, the older and the newer name): "
     "counted by ls, swept by the next build (another max_length).")
    cache = lab.mkdir(name, 0o700, owner=lab.victim)
    cold = lab.run(lab.victim, 'prepare', cache=cache, **args)
    left = ['cleaned/.0123abcd.json.k1x2y3z4.tmp', 'splits/.0123abcd.json.999999999-k1x2y3z4.tmp']
    lab.run(lab.victim, 'junk', cache=cache, files=left, old=left)
    ls = lab.run(lab.victim, 'ls', cache=cache)
    run = lab.run(lab.victim, 'prepare', cache=cache, max_length=64, **args)
    return dict(cache=cache, cold=cold, ls=ls, run=run, leftovers=left,
                remaining=[n for n in left if os.path.lexists(os.path.join(cache, n))])


def colleague(lab, args, name) -> dict:
    ("A cache shared with a trusted colleague (2775, $BANGLA_DATA_TRUSTED_CACHE set by both): the victim builds, the "
     "colleague reuses.")
    cache = lab.mkdir(name, 0o2775)
    cold = lab.run(lab.victim, 'prepare', trusted=cache, cache=cache, **args)
    return dict(cache=cache, cold=cold, run=lab.run(lab.attacker, 'prepare', trusted=cache, cache=cache, **args),
                again=lab.run(lab.attacker, 'prepare', trusted=cache, cache=cache, **args))


def outsider_attack(lab, args, name) -> dict:
    ("A cache the victim shares with a group the attacker is not in (2775, the victim's own group; "
     "$BANGLA_DATA_TRUSTED_CACHE set): the victim builds with umask 000, then its entry is made writable by everyone "
     "(an older version, a careless chmod), the outsider flips every label in place, the victim runs again.")
    cache = lab.mkdir(name, 0o2775, group=lab.gid(lab.victim))
    cold = lab.run(lab.victim, 'prepare', trusted=cache, cache=cache, umask=0, **args)
    entry = Path(cold['path'])
    modes = {p.name: stat.S_IMODE(os.lstat(p).st_mode) for p in [entry, *entry.iterdir()]}
    lab.run(lab.victim, 'junk', cache=cache, chmod={entry.name: 0o777, f'{entry.name}/*': 0o666})
    flipped = lab.run(lab.attacker, 'flip', entry=entry)
    return dict(cache=cache, cold=cold, modes=modes, flipped=flipped,
                run=lab.run(lab.victim, 'prepare', trusted=cache, cache=cache, **args))


def colleague_clear(lab, args, name) -> dict:
    ("A cache shared with a trusted colleague (2775, $BANGLA_DATA_TRUSTED_CACHE set by both): the victim builds, the "
     "colleague runs `cache clear`, the victim runs again.")
    cache = lab.mkdir(name, 0o2775)
    cold = lab.run(lab.victim, 'prepare', trusted=cache, cache=cache, **args)
    cleared = lab.run(lab.attacker, 'clear', trusted=cache, cache=cache)
    return dict(cache=cache, cold=cold, cleared=cleared, left=sorted(os.listdir(cache)),
                run=lab.run(lab.victim, 'prepare', trusted=cache, cache=cache, **args))


def teacher_attack(lab, name, swap) -> dict:
    ("Teacher outputs of two datasets (logits 1 and -1), the first one's manifest made to name the second one's logits "
     "file: in the victim's own store, or (`swap`) by another user who puts such a store in a group-writable one.")
    root = lab.mkdir(name, 0o2775) if swap else lab.mkdir(name, 0o700, owner=lab.victim)
    a, b = '0' * 32, 'f' * 32
    lab.run(lab.victim, 'teacher', root=root, op='save', fp=a, value=1)
    lab.run(lab.victim, 'teacher', root=root, op='save', fp=b, value=-1)
    if swap:
        scratch = lab.mkdir(name + '-scratch', 0o700, owner=lab.attacker)
        for fp, value in ((a, 1), (b, -1)):
            lab.run(lab.attacker, 'teacher', root=scratch, op='save', fp=fp, value=value)
        edited = lab.run(lab.attacker, 'teacher', root=scratch, op='point', fp=a, other=b, into=root)
    else: edited = lab.run(lab.victim, 'teacher', root=root, op='point', fp=a, other=b)
    return dict(root=root, edited=edited, run=lab.run(lab.victim, 'teacher', root=root, op='load', fp=a))
