# A headless Orket: built in one stage with only the build packages, run in Debian 12 with
# only the runtime libraries (docs/guide/deploying.md). BASE: the Debian 12 image to start
# from; `make image-test` passes one it made from Debian's archive where none can be pulled.
# Run by systemd with the label io.containers.autoupdate, `podman auto-update` keeps a
# container of it on the newest image (deploy/orket-podman.service).
ARG BASE=debian:12-slim
# BROWSER=1 adds Debian's headless Chromium and its WebDriver (chromium-headless-shell,
# chromium-driver; about 300 MB) so sandboxes' browser checks run in the image. Without
# them (the default) those checks are skipped with their reason, never failed
# (docs/sandbox.md, *Acceptance checks*): docker build --build-arg BROWSER=1 .
ARG BROWSER=0
FROM ${BASE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential pkg-config liblua5.4-dev lua-luv-dev libuv1-dev libsqlite3-dev \
      libcurl4-openssl-dev libsodium-dev lua-cjson-dev libedit-dev libyajl-dev libmicrohttpd-dev libseccomp-dev lua-busted libgit2-dev libpq-dev lua-yaml libcjose-dev libldap-dev libmimalloc-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# -o deps: the packages are installed above; scripts/deps.sh would also want the test-only
# ones (a browser, a database server), which a build never uses.
RUN make -o deps -j"$(nproc)" && make -o deps install PREFIX=/usr/local

FROM ${BASE}
ARG BROWSER
# curl: the HEALTHCHECK's client; libcurl4 is what orket itself loads to reach its models,
# libpq5 what it loads for a PostgreSQL store, libgit2-1.5 for the workspace's repository,
# libmicrohttpd12 for orket serve, libedit2 for orket repl, libcjose0 and libldap-2.5-0 for
# signing people in (all seven with dlopen: no NEEDED entry names them, so nothing but this
# list keeps them in the image).
RUN apt-get update && apt-get install -y --no-install-recommends \
      liblua5.4-0 lua-luv lua-cjson lua-yaml libuv1 libsqlite3-0 libcurl4 libsodium23 libedit2 libyajl2 libgit2-1.5 libmicrohttpd12 libseccomp2 libpq5 libcjose0 libldap-2.5-0 libmimalloc2.0 \
      ca-certificates curl \
    && if [ "$BROWSER" = 1 ]; then apt-get install -y --no-install-recommends chromium-headless-shell chromium-driver; fi \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 orket \
    && mkdir -p /work && chown orket:orket /work
COPY --from=build /usr/local /usr/local
USER orket
WORKDIR /work
# orket serve's port. It listens on every interface only with a key (ORKET_KEY, or a file
# named by ORKET_KEY_FILE such as a mounted secret); without one it keeps to loopback.
EXPOSE 8765
# The check asks on the container's own address, not on loopback: a server without a key
# keeps to loopback, where nothing outside the container reaches it, so it must not look
# healthy. (hostname -I: the first IPv4 address; serve with a key listens on 0.0.0.0.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD addr=$(hostname -I | tr ' ' '\n' | grep -m1 -v :) && curl -fsS -o /dev/null "http://$addr:8765/health" || exit 1
ENTRYPOINT ["/usr/local/bin/orket"]
CMD ["help"]
