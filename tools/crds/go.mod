module servestack.local/tools/crds

// Pins (by go.sum hash) the upstream modules whose CRD manifests tools/build-cluster.sh
// stages for the local cluster. No Go code here: `go mod download` (no arguments) fetches
// exactly the modules required below and verifies their zips against go.sum.
// Do not run `go mod tidy` in this directory: with no packages importing them it would
// drop every requirement.
//
//	istio.io/api                                       kubernetes/customresourcedefinitions.gen.yaml
//	github.com/kedacore/keda/v2                        config/crd/bases/*.yaml
//	sigs.k8s.io/karpenter                              pkg/apis/crds/*.yaml
//	github.com/prometheus-operator/prometheus-operator example/prometheus-operator-crd/*.yaml

go 1.26.6

require (
	github.com/kedacore/keda/v2 v2.21.0
	github.com/prometheus-operator/prometheus-operator v0.85.0
	istio.io/api v1.31.4
	sigs.k8s.io/karpenter v1.14.1
)
