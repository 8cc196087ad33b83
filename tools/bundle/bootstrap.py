"""Entry point of a gc-bundle .pyz (stored in the archive as __main__.py).

    python3 gc-agent-ID.pyz run [--report URL ...] [-- app.py ARGS]
    python3 gc-agent-ID.pyz check [-v]
    python3 gc-agent-ID.pyz --version

`run` and `check` use the profile built into the bundle unless given one.
Everything else is `python -m agent`: the agent verifies the bundle against
its MANIFEST.json before it does anything.
"""

import os
import sys

ARCHIVE = os.path.dirname(os.path.abspath(__file__))   # __file__ is ARCHIVE/__main__.py
PROFILE = os.path.join(ARCHIVE, "profile.ini")


def with_bundled_profile(argv):
    """argv for agent.__main__.main, with the bundled profile where none was given."""
    ours = argv[:argv.index("--")] if "--" in argv else argv
    if ours[:1] == ["run"] and not any(a == "--profile" or a.startswith("--profile=") for a in ours):
        return ["run", "--profile", PROFILE] + argv[1:]
    if ours[:1] == ["check"] and not [a for a in ours[1:] if not a.startswith("-")]:
        return argv + [PROFILE]
    return argv


if __name__ == "__main__":
    from agent.__main__ import main
    sys.exit(main(with_bundled_profile(sys.argv[1:])))
