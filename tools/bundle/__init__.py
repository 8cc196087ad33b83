"""gc-bundle: one file per device to upload at provisioning (see `gc-bundle --help`).

    build.py      assembles a device's bundle and returns what it wrote
    resolve.py    the profile as bundled: extends flattened, device id written in
    vendor.py     paho-mqtt and pyserial from the wheels `make setup` fetched
    archive.py    the deterministic .pyz and its MANIFEST.json
    autostart.py  DAL `system schedule script` lines and the systemd unit
    bootstrap.py  the bundle's own __main__.py (runs on the device)
"""
