# voipqa runner image (DESIGN §2, docker backend): SIPp customers, capture, reports —
# `voipqa run --env docker` against the compose network. Also the capture sidecar's image
# (dumpcap). The Debian packages are ./bootstrap's DEB_PACKAGES (a test keeps them in step).

# stage 1, the Python environment: built apart so the wheelhouse never reaches the image.
# PIP_OPTIONS: where pip finds packages; empty = PyPI. voipqa (compose's build args) passes
# "--no-index --find-links /build" when ./bootstrap --docker made a wheelhouse on the host
# (a build on a machine whose TLS proxy certificate the image lacks cannot reach PyPI).
FROM debian:12-slim AS venv
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ARG PIP_OPTIONS=""
# the dependencies from pyproject.toml alone (stubs stand in for qa/ and README.md), so a
# change to voipqa's code or docs rebuilds only the short layers after them; .wheelhous[e]: the wheelhouse's
# files, when there is one
COPY pyproject.toml .wheelhous[e] /build/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --no-cache-dir -q $PIP_OPTIONS --upgrade pip "setuptools>=77" wheel \
 && mkdir /build/qa && touch /build/qa/__init__.py /build/README.md \
 && /opt/venv/bin/python -m pip install --no-cache-dir -q $PIP_OPTIONS '/build[test]' \
 && /opt/venv/bin/python -m pip uninstall -y -q voipqa
COPY . /opt/voipqa
RUN rm -rf /opt/voipqa/.wheelhouse \
 && /opt/venv/bin/python -m pip install --no-cache-dir -q --no-deps --no-build-isolation -e /opt/voipqa \
 && /opt/venv/bin/voipqa --version

# stage 2, the runner image
FROM debian:12-slim

ARG DEBIAN_FRONTEND=noninteractive
# dumpcap setcap'd for the group wireshark, so the non-root runner can capture
# (with cap_add NET_RAW/NET_ADMIN in docker-compose.yml)
RUN echo "wireshark-common wireshark-common/install-setuid boolean true" | debconf-set-selections \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      sip-tester \
      kamailio \
      kamailio-sqlite-modules kamailio-tls-modules kamailio-extra-modules kamailio-utils-modules \
      rtpengine-daemon \
      tshark tcpdump \
      stunnel4 \
      kamailio-xml-modules \
      sqlite3 openssl \
      python3 ca-certificates libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && setcap cap_net_raw+ep /usr/bin/sipp
# SIPp plays the customers' RTP (rtp_stream, pcap_play) through a raw socket: without the
# file capability the non-root runner's SIPp stops at the answer ("Can't create raw IPv4
# socket"), no media and no BYE (the container needs cap_add NET_RAW for it to take effect)

# the package is installed editable, as ./bootstrap does: voipqa finds sipp/, lab/,
# carriers/ and robot_suites/ next to qa/ (qa/paths.py)
COPY --from=venv /opt/venv /opt/venv
COPY --from=venv /opt/voipqa /opt/voipqa
WORKDIR /opt/voipqa

RUN useradd --uid 10001 --user-group --groups wireshark --home-dir /opt/voipqa --no-create-home voipqa \
 && mkdir -p /var/lib/voipqa/results /var/lib/voipqa/lab /var/lib/voipqa/carriers /captures \
 && chown -R voipqa:voipqa /var/lib/voipqa /captures \
 && chown voipqa:voipqa /opt/voipqa

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
USER voipqa
CMD ["voipqa", "run", "--env", "docker", "--output", "/var/lib/voipqa/results"]
