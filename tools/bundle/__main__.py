"""gc-bundle --profile PROFILE --device-id ID --out DIR: the one file to upload to a device."""

import argparse
import os
import sys
from typing import List, Optional

from agent.errors import ProfileError

from . import autostart, vendor
from .build import SIZE_LIMIT, build

EPILOG = """what it writes in DIR:
  gc-agent-ID.pyz      the agent, the resolved profile, paho-mqtt and pyserial, MANIFEST.json;
                       on the device: python3 gc-agent-ID.pyz run [-- app.py ARGS] | check
  gc-agent-ID.dal.txt  DAL Admin CLI lines for the auto-start entry (docs/provisioning.md)
  gc-agent-ID.service  systemd unit for a generic Linux gateway (deploy/systemd/)

examples:
  gc-bundle --profile device_profiles/ix20.ini --device-id ix20-0042 --out dist/
  gc-bundle --profile site/ix20.ini --device-id ix20-0042 --out dist/ --python 3.10 \\
            --app /etc/config/scripts/app.py

Keys, certificates and password files the profile names stay out of the bundle
(copy them to the device, e.g. /etc/config/gcagent/) unless --include-secrets.
Wheels come from .venv/wheels, filled by `make setup`; nothing is downloaded here.
exit status: 0 built; 2 bad input (profile, options, missing wheels), with the reason.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gc-bundle", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a one-file gc-agent bundle (.pyz zip application) for one device, "
                    "with the DAL auto-start lines and a systemd unit next to it.")
    parser.add_argument("--profile", required=True, help="device profile (INI; extends allowed)")
    parser.add_argument("--device-id", required=True, metavar="ID",
                        help="the device's id: written into the profile, names the files, "
                             "the MQTT topics and (with deploy/broker) the certificate CN")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    parser.add_argument("--python", default="3.6", metavar="X.Y",
                        help="the device's Python (default 3.6, which every DAL firmware "
                             "runs): below 3.7 paho-mqtt 1.6.x goes in, else 2.x")
    parser.add_argument("--vendor", default=vendor.DEFAULT_VENDOR, metavar="DIR",
                        help="folder with the paho-mqtt and pyserial wheels "
                             "(default: .venv/wheels, filled by `make setup`)")
    parser.add_argument("--app", default="", metavar="DEVICE_PATH",
                        help="the application the agent wraps, as a path on the device, for "
                             "the auto-start command line (default: the agent alone)")
    parser.add_argument("--device-dir", default=autostart.DAL_SCRIPTS, metavar="DIR",
                        help="where the .pyz goes on a DAL device (default %(default)s)")
    parser.add_argument("--include-secrets", action="store_true",
                        help="put the key, certificate and password files the profile names "
                             "inside the bundle; the agent writes each to its path (mode "
                             "0600) at first start, never over an existing file")
    parser.add_argument("--secrets-dir", metavar="DIR",
                        help="with --include-secrets: where this machine's copies are, by "
                             "file name (default: as written, else the profile's folder)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        built = build(args.profile, args.device_id, args.out, python=args.python,
                      vendor_dir=args.vendor, include_secrets=args.include_secrets,
                      secrets_dir=args.secrets_dir, app=args.app, device_dir=args.device_dir)
    except ProfileError as exc:
        for problem in exc.problems:
            sys.stderr.write(str(problem) + "\n")
        return 2
    except (ValueError, OSError, vendor.VendorError) as exc:
        sys.stderr.write("gc-bundle: %s\n" % exc)
        return 2
    out = sys.stdout
    out.write("%s  %d bytes (%.0f KB; limit %d KB)\n" % (built.pyz, built.size, built.size / 1024,
                                                         SIZE_LIMIT // 1024))
    out.write("  bundle sha256 %s  (status messages report it as `bundle`)\n"
              % built.bundle_sha256)
    out.write("  profile sha256 %s\n" % built.profile_sha256)
    out.write("  for Python %s: %s\n" % (built.python, ", ".join(
        "%s %s" % item for item in sorted(built.libraries.items()))))
    out.write("%s\n%s\n" % (built.dal, built.unit))
    for member, device_path in built.secrets_inside:
        out.write("  inside: %s -> %s on the device at first start\n" % (member, device_path))
    if built.secrets_outside:
        out.write("copy to the device yourself (not in the bundle):\n")
        for secret in built.secrets_outside:
            out.write("  %-28s [%s] %s (%s)\n" % (secret.device_path, secret.section, secret.key,
                                                  secret.what))
    if built.size > SIZE_LIMIT:
        sys.stderr.write("gc-bundle: %s is %d bytes, over the %d KB budget\n"
                         % (os.path.basename(built.pyz), built.size, SIZE_LIMIT // 1024))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
