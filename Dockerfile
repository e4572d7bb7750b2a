# A headless Orket: build in one stage, run in Debian 12 slim with only the runtime libraries.
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential pkg-config liblua5.4-dev lua-luv-dev libuv1-dev libsqlite3-dev \
      libcurl4-openssl-dev libsodium-dev lua-cjson-dev libedit-dev libyajl-dev libmicrohttpd-dev libseccomp-dev lua-busted libgit2-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" && make install PREFIX=/usr/local

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      liblua5.4-0 lua-luv lua-cjson libuv1 libsqlite3-0 libcurl4 libsodium23 libedit2 libyajl2 libgit2-1.5 libmicrohttpd12 libseccomp2 libpq5 \
      ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 orket
COPY --from=build /usr/local /usr/local
USER orket
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/orket"]
CMD ["help"]
