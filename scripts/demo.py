"""The demo: start the local GHCR stand-ins with a sample organisation, run tap-ghcr, show what it extracted.

Everything runs on 127.0.0.1: the GitHub REST emulator, a ghcr.io-like token
server and the real CNCF distribution registry. The Singer output is kept in
output/demo.singer.jsonl.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator.dataset import sample_dataset  # noqa: E402
from tests.emulator.world import start_world  # noqa: E402


def main() -> int:
    world = start_world(sample_dataset())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.json"
            config.write_text(json.dumps(world.config()))
            tap = str(Path(sys.executable).with_name("tap-ghcr"))
            print(f"$ tap-ghcr --config <local emulator config>   (GitHub API at {world.github.url}, "
                  f"registry at {world.registry.url})", file=sys.stderr)
            proc = subprocess.run([tap, "--config", str(config)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return proc.returncode
        out = ROOT / "output" / "demo.singer.jsonl"
        out.parent.mkdir(exist_ok=True)
        out.write_text(proc.stdout)
        messages = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        shown: set[tuple[str, str]] = set()
        for message in messages:  # one example of each message type per stream
            key = (message["type"], message.get("stream", ""))
            if key not in shown:
                shown.add(key)
                print(json.dumps(message)[:400])
        counts = collections.Counter((m["type"], m.get("stream", "")) for m in messages)
        print("\nSinger messages by type and stream:")
        for (kind, stream), n in sorted(counts.items()):
            print(f"  {kind:<7} {stream:<17} {n}")
        print(f"\nFull output: {out.relative_to(ROOT)}")
    finally:
        world.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
