import tempfile
from pathlib import Path

from hepdemo.analysis import run

with tempfile.TemporaryDirectory() as tmp:
    print(run(Path(tmp)))
