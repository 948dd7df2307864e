module servestack.local/tools/gateway-api

// Pins (by go.sum hash) the Gateway API module whose standard-channel CRD manifests
// tools/build-gateway-api.sh stages for the local cluster (HTTPRoute for deployments'
// `route`). No Go code here: `go mod download` (no arguments) fetches exactly the module
// required below and verifies its zip against go.sum. Do not run `go mod tidy` here.
//
//	sigs.k8s.io/gateway-api    config/crd/standard/gateway.networking.k8s.io_*.yaml

go 1.26.6

require sigs.k8s.io/gateway-api v1.6.3
