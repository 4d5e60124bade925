# voipqa FreeSWITCH carrier (docker-compose.yml, profile freeswitch): your FreeSWITCH 1.10
# image plus the configuration voipqa generates from the number plan. Debian ships no
# FreeSWITCH and SignalWire's repository needs a token, so the base is yours:
#   FREESWITCH_IMAGE   a FreeSWITCH 1.10 image with its stock configuration in /etc/freeswitch,
#                      fs_cli and /bin/sh (compose passes $VOIPQA_FREESWITCH_IMAGE;
#                      default voipqa/freeswitch-base:1.10, a tag you build or pull yourself)
# docker/freeswitch-entrypoint.sh installs carriers/freeswitch/ into the stock configuration
# at start (refusing, in one line, a configuration it cannot install) and runs FreeSWITCH.
# Build context: the repository root.
ARG FREESWITCH_IMAGE=voipqa/freeswitch-base:1.10
FROM ${FREESWITCH_IMAGE}
COPY carriers/freeswitch /voipqa/freeswitch
COPY docker/freeswitch-entrypoint.sh /voipqa/freeswitch-entrypoint.sh
ENTRYPOINT ["/bin/sh", "/voipqa/freeswitch-entrypoint.sh"]
