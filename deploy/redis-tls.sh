#!/bin/sh
# A throwaway CA and a certificate for Redis' TLS port, for docker-compose.yml and deploy/k8s.
#
#   deploy/redis-tls.sh DIR [HOST...]
#
# Writes DIR/ca.crt (what clients trust: BTC_REDIS_CA_FILE), DIR/tls.crt and DIR/tls.key
# (what redis-server presents). The certificate names HOST... (default: the compose and
# Kubernetes service names, and localhost for the health checks) and 127.0.0.1; clients
# check the name they connect to. The CA's key is deleted once it has signed: to renew,
# run this again and restart Redis and its clients. DIR is created 0700 and must stay out
# of git (deploy/compose/.gitignore ignores deploy/compose/redis-tls/). tls.key is 0644 so
# that Redis' own user in its container (uid 999) can read the bind-mounted file; the
# directory around it keeps it from the host's other users.
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 DIR [HOST...]" >&2
    exit 2
fi
dir=$1
shift
[ $# -gt 0 ] || set -- redis redis.btc redis.btc.svc redis.btc.svc.cluster.local localhost
days=${REDIS_TLS_DAYS:-825}

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

names="IP:127.0.0.1"
for host in "$@"; do
    names="$names,DNS:$host"
done
cat > "$work/server.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = $names
EXT

openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -subj "/CN=btc-platform Redis CA" -days "$days" \
    -addext "basicConstraints = critical, CA:TRUE" \
    -addext "keyUsage = critical, keyCertSign, cRLSign" \
    -keyout "$work/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -subj "/CN=$1" -keyout "$dir/tls.key" -out "$work/server.csr" 2>/dev/null
openssl x509 -req -in "$work/server.csr" -CA "$dir/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -CAserial "$work/ca.srl" -days "$days" -extfile "$work/server.ext" \
    -out "$dir/tls.crt" 2>/dev/null
chmod 644 "$dir/ca.crt" "$dir/tls.crt" "$dir/tls.key"
echo "wrote $dir/ca.crt, $dir/tls.crt, $dir/tls.key for: $*"
