#!/bin/sh
# Certificates for a gc-agent fleet: a pilot CA, the broker's server certificate,
# the console's client certificate, and one client certificate per device.
# The CN of a client certificate is its MQTT username on the broker
# (use_identity_as_username): the device id for a device, "console" for the console.
#
#   make-certs.sh [--dir DIR] [--days N] ca
#   make-certs.sh [--dir DIR] [--days N] server HOSTNAME [IP]
#   make-certs.sh [--dir DIR] [--days N] console [NAME]
#   make-certs.sh [--dir DIR] [--days N] device ID [ID ...]
#
# DIR defaults to ./pki. Keys are ECDSA P-256 (small handshakes on cellular
# links; Python 3.6's ssl handles them), written with mode 0600. The CA key
# signs everything: keep it off the broker once the certificates are made.
# A pilot CA: for production, sign with your organisation's CA and keep the
# CN rules above.
set -eu

dir=./pki
days=825
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir=$2; shift 2 ;;
        --days) days=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//; /^set -eu/d'; exit 0 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--dir DIR] [--days N] ca|server|console|device ..." >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is not installed" >&2; exit 2; }
mkdir -p "$dir"
umask 077

check_name() {
    # Same rule as gc-bundle --device-id; the ACL's %u must not hold / + #.
    case "$1" in
        ''|*[!A-Za-z0-9._-]*) echo "make-certs.sh: '$1': use only A-Z a-z 0-9 . _ -" >&2; exit 2 ;;
    esac
    [ ${#1} -le 64 ] || { echo "make-certs.sh: '$1' is longer than 64 characters" >&2; exit 2; }
}

need_ca() {
    [ -f "$dir/ca.crt" ] && [ -f "$dir/ca.key" ] || {
        echo "make-certs.sh: no CA in $dir: run '$0 --dir $dir ca' first" >&2; exit 2; }
}

# sign NAME EXTENSIONS: a new key and a certificate for CN=NAME signed by the CA.
sign() {
    name=$1; ext=$2
    if [ -f "$dir/$name.crt" ]; then
        echo "make-certs.sh: $dir/$name.crt exists; remove it first to replace it" >&2; exit 2
    fi
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=$name" -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
    printf '%s\n' "$ext" > "$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days "$days" -sha256 -extfile "$dir/$name.ext" \
        -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
    chmod 600 "$dir/$name.key"
    chmod 644 "$dir/$name.crt"
    echo "$dir/$name.crt $dir/$name.key"
}

client_ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=clientAuth"

what=$1; shift
case "$what" in
    ca)
        if [ -f "$dir/ca.key" ]; then
            echo "make-certs.sh: $dir/ca.key exists; not replacing the CA" >&2; exit 2
        fi
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=gc-agent pilot CA" -days "$days" -sha256 \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
        chmod 600 "$dir/ca.key"; chmod 644 "$dir/ca.crt"
        echo "$dir/ca.crt $dir/ca.key"
        ;;
    server)
        [ $# -ge 1 ] || { echo "usage: $0 server HOSTNAME [IP]" >&2; exit 2; }
        need_ca
        san="DNS:$1"
        [ $# -ge 2 ] && san="$san,IP:$2"
        sign server "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san"
        ;;
    console)
        need_ca
        name=${1:-console}
        check_name "$name"
        sign "$name" "$client_ext"
        ;;
    device)
        [ $# -ge 1 ] || { echo "usage: $0 device ID [ID ...]" >&2; exit 2; }
        need_ca
        for id in "$@"; do
            check_name "$id"
            if [ "$id" = console ]; then
                echo "make-certs.sh: 'console' is the console's name; pick another device id" >&2; exit 2
            fi
            sign "$id" "$client_ext"
        done
        ;;
    *)
        echo "make-certs.sh: unknown '$what' (ca, server, console or device)" >&2; exit 2 ;;
esac
