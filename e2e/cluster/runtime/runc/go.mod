// Builds runc (with seccomp) for the cluster lab's nodes.
module purelb-ts/e2e/cluster/runtime/runc

go 1.26.0

require github.com/opencontainers/runc v1.5.3
