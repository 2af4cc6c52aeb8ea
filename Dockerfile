# syntax=docker/dockerfile:1
# One image for both components of purelb-ts; the chart picks the entry point:
#   allocator:   node --optimize-for-size --max-semi-space-size=4 src/allocator/main.ts
#   lbnodeagent: node --max-semi-space-size=4 src/lbnodeagent/main.ts
# TypeScript runs through Node 24's type stripping, so there is no compile step. The
# native addon (native/kernel.c) and npm's native modules are built here, in the build
# stage: nothing is fetched or compiled at run time (the agent's root file system is
# read-only). BIRD 2 is included for the chart's optional BIRD DaemonSet.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# A C compiler for native/kernel.c, and node-gyp's tools in case a module has no prebuild.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native/ native/
RUN npm ci --omit=dev --no-audit --no-fund
# Writes node_modules/.cache/purelb-ts/kernel-<hash>.node, the file src/netlink/native.ts loads.
RUN node native/build.ts

FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends bird2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules/ node_modules/
COPY package.json ./
COPY native/ native/
COPY src/ src/
# The chart sets the user per component: the allocator as nobody, the agent as root
# with only NET_ADMIN and NET_RAW.
USER 65534:65534
EXPOSE 7472
# The flags: see src/runtime.ts.
CMD ["node", "--optimize-for-size", "--max-semi-space-size=4", "src/allocator/main.ts"]
