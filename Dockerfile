# syntax=docker/dockerfile:1
# One image for both components of purelb-ts; the chart picks the entry point:
#   allocator:   node --optimize-for-size --max-semi-space-size=4 --heap-growing-percent=20 dist/allocator.mjs
#   lbnodeagent: node --max-semi-space-size=4 --heap-growing-percent=20 dist/lbnodeagent.mjs
# Each is one tree-shaken bundle (scripts/bundle.ts, with the native addon beside it),
# built in the build stage; node_modules holds only what the bundles load at run time
# (scripts/runtime-modules.ts). Nothing is fetched or compiled at run time (the agent's
# root file system is read-only). BIRD 2 is included for the chart's optional BIRD
# DaemonSet.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# A C compiler for native/kernel.c, and node-gyp's tools in case a module has no prebuild.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY native/ native/
RUN npm ci --no-audit --no-fund
COPY scripts/bundle.ts scripts/runtime-modules.ts scripts/
COPY src/ src/
# dist/allocator.mjs, dist/lbnodeagent.mjs and dist/kernel.node (the addon, native/kernel.c).
RUN node scripts/bundle.ts && node scripts/runtime-modules.ts /runtime

FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends bird2 \
 && rm -rf /var/lib/apt/lists/*
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
