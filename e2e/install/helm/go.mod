// Builds the helm CLI from its Go module for the install tests (see build.sh).
module purelb-ts/e2e/install/helm

go 1.26.0

require helm.sh/helm/v4 v4.3.1
