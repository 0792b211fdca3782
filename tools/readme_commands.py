"""Print the README's set-up commands (the ```sh blocks of its "Set up" section), so .ci/run runs exactly them.

`python tools/readme_commands.py install` prints the first command, `... test` the second.
"""
import re, sys
from pathlib import Path

readme = (Path(__file__).resolve().parents[1] / 'README.md').read_text(encoding='utf-8')
section = readme.split('## Set up', 1)[1].split('\n## ', 1)[0]
cmds = [b.strip() for b in re.findall(r"```sh\n(.*?)```", section, re.S)]
if len(cmds) != 2:
    sys.exit(f"README's Set up section should hold exactly two ```sh commands, found {len(cmds)}")
print(dict(install=cmds[0], test=cmds[1])[sys.argv[1]])
