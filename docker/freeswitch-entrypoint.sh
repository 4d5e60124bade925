#!/bin/sh
# Entrypoint of the freeswitch service (docker-compose.yml): installs the configuration
# voipqa generates from the number plan (carriers/freeswitch/, mounted read-only at
# /voipqa/freeswitch) into a stock FreeSWITCH 1.10 configuration, then runs FreeSWITCH in
# the foreground. The image is yours to supply (VOIPQA_FREESWITCH_IMAGE): Debian has no
# FreeSWITCH package.
#   VOIPQA_CARRIER_NAME  this carrier's name (vars_voipqa.xml's voipqa_carrier; routes with
#                        `carriers:` in the number plan match on it). Default carrier-c.
#   VOIPQA_SIP_IP        the address the voipqa profile binds (SIP and RTP). Default FreeSWITCH's
#                        own local_ip_v4; docker-compose.host.yml sets the carrier's 127.0.0.x.
#   FREESWITCH_CONF      the configuration directory. Default /etc/freeswitch.
set -eu
SRC=/voipqa/freeswitch
CONF=${FREESWITCH_CONF:-/etc/freeswitch}
NAME=${VOIPQA_CARRIER_NAME:-carrier-c}

SIP_IP=${VOIPQA_SIP_IP:-}

case "$SIP_IP" in
  *[!0-9.]*) echo "freeswitch-entrypoint: VOIPQA_SIP_IP=$SIP_IP: an IPv4 address only" >&2; exit 2 ;;
esac
case "$NAME" in
  *[!a-z0-9_-]*|"") echo "freeswitch-entrypoint: VOIPQA_CARRIER_NAME=$NAME: a-z, 0-9, - and _ only" >&2; exit 2 ;;
esac
for f in sip_profiles/voipqa.xml dialplan/voipqa.xml vars_voipqa.xml \
         autoload_configs/json_cdr.conf.xml autoload_configs/modules.conf.xml; do
  [ -f "$SRC/$f" ] || { echo "freeswitch-entrypoint: $SRC/$f missing: run voipqa carrier render-freeswitch" >&2; exit 2; }
done
[ -f "$CONF/freeswitch.xml" ] && [ -f "$CONF/vars.xml" ] || {
  echo "freeswitch-entrypoint: no stock configuration in $CONF (freeswitch.xml, vars.xml)" >&2; exit 2; }

# the stock profiles (internal 5060, external 5080) would fight for voipqa's port 5080
mkdir -p "$CONF/sip_profiles" "$CONF/dialplan" "$CONF/autoload_configs" /var/log/freeswitch/json_cdr
rm -rf "$CONF"/sip_profiles/*
if [ -n "$SIP_IP" ]; then
  sed "s/\$\$[{]local_ip_v4[}]/$SIP_IP/g" "$SRC/sip_profiles/voipqa.xml" > "$CONF/sip_profiles/voipqa.xml"
else
  cp "$SRC/sip_profiles/voipqa.xml" "$CONF/sip_profiles/voipqa.xml"
fi
cp "$SRC/dialplan/voipqa.xml" "$CONF/dialplan/voipqa.xml"
cp "$SRC/autoload_configs/json_cdr.conf.xml" "$SRC/autoload_configs/modules.conf.xml" "$CONF/autoload_configs/"
sed "s/voipqa_carrier=[A-Za-z0-9_-]*/voipqa_carrier=$NAME/" "$SRC/vars_voipqa.xml" > "$CONF/vars_voipqa.xml"
grep -q 'data="vars_voipqa.xml"' "$CONF/vars.xml" ||
  sed -i 's#</include>#  <X-PRE-PROCESS cmd="include" data="vars_voipqa.xml"/>\n</include>#' "$CONF/vars.xml"

echo "freeswitch-entrypoint: voipqa configuration installed in $CONF as $NAME"
[ "$#" -gt 0 ] && exec "$@"
exec freeswitch -nonat -c
