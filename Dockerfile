# syntax=docker/dockerfile:1
# The purelb-ts image (the final stage, what `docker build` builds by default) holds both
# components and nothing else; the chart picks the entry point:
#   allocator:   node --optimize-for-size --max-semi-space-size=4 --heap-growing-percent=20 dist/allocator.mjs
#   lbnodeagent: node --lite-mode --max-semi-space-size=4 --heap-growing-percent=20 --v8-pool-size=1 dist/lbnodeagent.mjs
# Each is one tree-shaken bundle (scripts/bundle.ts, with the native addon beside it),
# built in the build stage; node_modules holds only the files the bundles load at run
# time (scripts/runtime-modules.ts). Below /app there is only node, the libraries it and
# the addons need, /etc/passwd, /etc/group and /tmp (scripts/image/rootfs.sh): no shell,
# no package manager. Nothing is fetched or compiled at run time (the agent's root file
# system is read-only).
# BIRD 2, for the chart's optional BIRD DaemonSet, is the image of the `bird` stage:
#   docker build --target bird -t REGISTRY/purelb-ts-bird:TAG .

ARG NODE_IMAGE=node:24-bookworm-slim
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${NODE_IMAGE} AS build
# A C compiler for native/kernel.c, node-gyp's tools in case a module has no prebuild,
# binutils (in build-essential) for scripts/image/rootfs.sh.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native/ native/
RUN npm ci --no-audit --no-fund
COPY scripts/bundle.ts scripts/runtime-modules.ts scripts/
COPY scripts/image/rootfs.sh scripts/image/
COPY src/ src/
# dist/allocator.mjs, dist/lbnodeagent.mjs and dist/kernel.node (the addon, native/kernel.c).
RUN node scripts/bundle.ts && node scripts/runtime-modules.ts /runtime
# The root file system below /app: this stage's node, stripped, and the libraries it and
# the addons need, from the Debian packages rootfs.sh names.
# (/debs belongs to _apt, the user apt downloads as.)
RUN mkdir /debs && chown _apt /debs && cd /debs \
 && apt-get update && apt-get download $(bash /app/scripts/image/rootfs.sh --packages) \
 && rm -rf /var/lib/apt/lists/* \
 && bash /app/scripts/image/rootfs.sh /debs "$(command -v node)" /rootfs /app/dist /runtime

FROM ${DEBIAN_IMAGE} AS bird
RUN apt-get update \
 && apt-get install -y --no-install-recommends bird2 \
 && rm -rf /var/lib/apt/lists/*
CMD ["bird", "-f", "-c", "/etc/bird/bird.conf", "-s", "/run/bird/bird.ctl"]

FROM scratch
COPY --from=build /rootfs/ /
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /runtime/node_modules/ node_modules/
COPY package.json ./
COPY --from=build /app/dist/allocator.mjs /app/dist/lbnodeagent.mjs /app/dist/kernel.node dist/
# The chart sets the user per component: the allocator as nobody, the agent as root
# with only NET_ADMIN and NET_RAW.
USER 65534:65534
EXPOSE 7472
# The flags: see src/runtime.ts.
CMD ["node", "--optimize-for-size", "--max-semi-space-size=4", "--heap-growing-percent=20", "dist/allocator.mjs"]
