// Builds containerd, its runc shim and ctr for the cluster lab's nodes.
module purelb-ts/e2e/cluster/runtime/containerd

go 1.26.6

require github.com/containerd/containerd/v2 v2.4.2
