# crowdpack — see README.md. Everything here runs on a machine with only Go:
# the test binaries are built from the Go module proxy by hack/tools.sh.

# IMG is the manager image's repository; its tag is VERSION.
IMG ?= ghcr.io/crowdpack/crowdpack
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Stamps internal/version (manager --version, crowdpack_build_info, User-Agent).
LDFLAGS := -X github.com/crowdpack/crowdpack/internal/version.Version=$(VERSION) \
  -X github.com/crowdpack/crowdpack/internal/version.Commit=$(COMMIT)
BIN := $(CURDIR)/bin
DIST ?= $(CURDIR)/dist
HELM := $(BIN)/helm
CONTROLLER_GEN := $(BIN)/controller-gen
CRD_REF_DOCS := $(BIN)/crd-ref-docs
KUBECTL ?= kubectl
FUZZTIME ?= 5s

# The machine's own Go builds everything; a go.mod toolchain line must not
# make the go command fetch another.
export GOTOOLCHAIN := local
# envtest finds etcd and kube-apiserver here.
export KUBEBUILDER_ASSETS := $(BIN)

.PHONY: all
all: build

##@ Development

# The Helm chart renders the same CRDs from its files/crds (through
# templates/crds.yaml, so that helm upgrade upgrades them; test/helm checks it).
.PHONY: manifests
manifests: $(CONTROLLER_GEN) api-docs ## Generate the CRD and RBAC manifests (and the API reference).
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="{./api/...,./controllers/...}" output:crd:artifacts:config=config/crd/bases
	rm -f charts/crowdpack/files/crds/*.yaml && cp config/crd/bases/*.yaml charts/crowdpack/files/crds/
	cp config/grafana/crowdpack.json charts/crowdpack/files/grafana/crowdpack.json

# The API reference is generated from the same Go types and their comments
# (config in hack/api-docs/); hack/check-generated.sh keeps it current.
.PHONY: api-docs
api-docs: $(CRD_REF_DOCS) ## Generate the API reference docs/api/v1alpha1.md from the Go types.
	$(CRD_REF_DOCS) --source-path=./api/v1alpha1 --config=hack/api-docs/config.yaml \
	  --renderer=markdown --output-mode=single --output-path=docs/api/v1alpha1.md --log-level=ERROR

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="{./api/...,./controllers/...}"

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: tools
tools: ## Build (or reuse) controller-gen, crd-ref-docs, etcd, kube-apiserver (newest and oldest supported), MinIO and helm in bin/.
	hack/tools.sh all

# The demo runs etcd, one kube-apiserver and MinIO, and applies the committed
# CRDs (hack/check-generated.sh keeps them current): it needs neither the
# oldest kube-apiserver nor helm, controller-gen or crd-ref-docs.
.PHONY: demo-tools
demo-tools: ## Build (or reuse) only what make demo needs: etcd, kube-apiserver and MinIO in bin/.
	hack/tools.sh etcd kube-apiserver minio

# go test ./... includes ./test/docs, which checks every command, YAML block
# and link of README.md and docs/ (make test-docs runs it alone).
#
# The soak (2 minutes, seed 1) is the longest package and the last in go
# test's order, so it runs beside the others from the start. Each benchmark
# runs once (so none rots), passed to the test binaries after -args: given
# -bench, go test would run the packages one at a time.
# CI (.ci/run) runs make test, then make test-oldest, make fuzz and
# make e2e-node: they need more time than a developer's loop.
.PHONY: test
test: tools ## The tests: generated files current, vet, every package (the short soak, each benchmark once); under 5 minutes warm.
	hack/check-generated.sh
	go vet ./...
	go vet -tags e2enode ./test/node
	$(MAKE) --no-print-directory -j2 test-soak test-packages

# The end-to-end digest benchmark runs on a small file here: it is a test of
# the path, not a figure.
.PHONY: test-packages test-soak
test-packages:
	CROWDPACK_DIGEST_E2E_MIB=8 go test $$(go list ./... | grep -v '/test/soak$$') -count=1 -timeout 30m \
	  -skip 'ThousandUploads|IdleSyncs' -args -test.bench=. -test.benchtime=1x
test-soak:
	go test ./test/soak -count=1 -timeout 30m

# The oldest Kubernetes minor the CRD works on (hack/tools.sh
# OLDEST_KUBERNETES_VERSION; docs/install.md "Supported Kubernetes versions" states the range): the
# admission tests, one full upload, the release files' dry runs and a real
# helm install and upgrade run against its kube-apiserver too.
OLDEST_ASSETS := $(BIN)/k8s-oldest
# One go test for the four packages, so that they run side by side; the
# names are each package's own (none matches a test of another package).
OLDEST_TESTS := ^(TestAdmission.*|TestAMultiPartFileIsUploadedMergedAndExpandedOnce|TestInstallYAMLIsAccepted.*|TestCRDsYAMLIs.*|TestThePackagedChart.*|TestHelmUpgradeFromThePreviousChart|TestTheChartRendersAndTheAPIServerAccepts.*)$$
.PHONY: test-oldest
test-oldest: $(HELM) ## Run the admission tests, one full upload, the release and chart checks against the oldest supported kube-apiserver.
	hack/tools.sh k8s-oldest minio
	KUBEBUILDER_ASSETS=$(OLDEST_ASSETS) go test ./api/... ./controllers/uploads ./test/release ./test/helm -count=1 -run '$(OLDEST_TESTS)'

# make e2e-node runs the release on a real single-node cluster on this machine
# (docs/e2e-node.md): two releases are built (the second for helm upgrade),
# hack/node brings up etcd, the control plane, containerd, kubelet and
# kube-proxy from bin/node (hack/tools.sh node), imports both image tarballs,
# runs test/node against it and tears it all down. It needs root; it installs
# containerd, runc and the CNI plugins with apt-get when they are missing.
E2E_NODE_DIR := $(BIN)/e2e-node
E2E_NODE_VERSION ?= v0.0.0-e2e.1
E2E_NODE_VERSION_2 ?= v0.0.0-e2e.2
E2E_NODE_IMAGE = crowdpack-image-$(1)-linux-amd64.tar
.PHONY: e2e-node
e2e-node: $(HELM) ## Run the release (image, chart, install.yaml) on a real single-node cluster on this machine; needs root.
	hack/tools.sh node minio
	HELM=$(HELM) hack/release.sh $(E2E_NODE_VERSION) $(IMG) $(E2E_NODE_DIR)/dist-1
	HELM=$(HELM) hack/release.sh $(E2E_NODE_VERSION_2) $(IMG) $(E2E_NODE_DIR)/dist-2
	go build -o $(E2E_NODE_DIR)/node ./hack/node
	go test -c -tags e2enode -o $(E2E_NODE_DIR)/node.test ./test/node
	cd test/node && CROWDPACK_E2E_NODE_IMAGE_REPO=$(IMG) \
	  CROWDPACK_E2E_NODE_VERSION=$(E2E_NODE_VERSION) CROWDPACK_E2E_NODE_DIST=$(E2E_NODE_DIR)/dist-1 \
	  CROWDPACK_E2E_NODE_VERSION_2=$(E2E_NODE_VERSION_2) CROWDPACK_E2E_NODE_DIST_2=$(E2E_NODE_DIR)/dist-2 \
	  $(E2E_NODE_DIR)/node --bin $(BIN)/node \
	    --image $(E2E_NODE_DIR)/dist-1/$(call E2E_NODE_IMAGE,$(E2E_NODE_VERSION)) \
	    --image $(E2E_NODE_DIR)/dist-2/$(call E2E_NODE_IMAGE,$(E2E_NODE_VERSION_2)) \
	    -- $(E2E_NODE_DIR)/node.test -test.v -test.timeout 30m $(if $(E2E_NODE_RUN),-test.run '$(E2E_NODE_RUN)')
	@# A node that panics with a pod running must still leave nothing (exit 4: panicked, torn down, checked).
	rc=0; $(E2E_NODE_DIR)/node --bin $(BIN)/node --panic-with-a-pod || rc=$$?; \
	  test $$rc -eq 4 || { echo "e2e-node: after a panic node exited $$rc, want 4 (see its log above)" >&2; exit 1; }

.PHONY: test-docs
test-docs: tools ## Check the docs: YAML dry-run against the API server, commands, links, README length.
	go test ./test/docs -count=1

.PHONY: crash-test
crash-test: tools ## Kill the manager binary at every crash point of an upload's life and check that it recovers (make test draws three).
	CROWDPACK_CRASH_POINTS=all go test ./controllers/uploads -count=1 -run TestAManagerKilledAnywhereFinishesEveryUploadOnce -v -timeout 30m

# The soak (test/soak, docs/soak.md): make test runs it for 2 minutes with
# seed 1; make soak for SOAK_DURATION with a new seed, which it prints.
SOAK_DURATION ?= 10m
SOAK_SEED ?= $(shell date +%s)
.PHONY: soak
soak: tools ## Run uploads and syncs under combined faults for SOAK_DURATION (10m) and check the invariants; SOAK_SEED=N replays a run.
	CROWDPACK_SOAK_DURATION=$(SOAK_DURATION) CROWDPACK_SOAK_SEED=$(SOAK_SEED) \
	  go test ./test/soak -count=1 -run TestSoak -v -timeout 3h

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME.
	hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: tools ## Run the benchmarks (not the load test).
	go test ./... -run '^$$' -bench . -skip 'ThousandUploads|IdleSyncs' -benchtime 3x -benchmem

# LOAD_FLAGS are the manager flags under test, e.g. LOAD_FLAGS="--max-concurrent-reconciles=16".
LOAD_OBJECTS ?= 1000
LOAD_FLAGS ?=
.PHONY: load
load: tools ## Time LOAD_OBJECTS UserPackageUploads to Ready with the manager binary against the bare-write floor in the same run; restart the manager; report the ratio, peak RSS and what the restart cost.
	CROWDPACK_LOAD_OBJECTS=$(LOAD_OBJECTS) CROWDPACK_LOAD_FLAGS="$(LOAD_FLAGS)" \
	  go test ./controllers/uploads -run '^$$' -bench ThousandUploads -benchtime 1x -timeout 60m

# IDLE_SYNCS syncs of one unchanged key each, every minute, watched for IDLE_DURATION.
IDLE_SYNCS ?= 1000
IDLE_DURATION ?= 10m
.PHONY: idle-syncs
idle-syncs: tools ## Watch IDLE_SYNCS idle UserPackageSyncs for IDLE_DURATION with the manager binary; fail on any write or more than one request per sync per minute.
	CROWDPACK_IDLE_SYNCS=$(IDLE_SYNCS) CROWDPACK_IDLE_DURATION=$(IDLE_DURATION) CROWDPACK_LOAD_FLAGS="$(LOAD_FLAGS)" \
	  go test ./controllers/uploads -run '^$$' -bench IdleSyncs -benchtime 1x -timeout 60m

##@ Build

.PHONY: build
# Static binaries, as the release builds them; std and the client packages
# compiled for kube-apiserver (CGO_ENABLED=0, -trimpath) serve them too.
build plugin: export CGO_ENABLED := 0
build: ## Build the manager and the sandbox into bin/.
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/manager .
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/wechatpay-sandbox ./cmd/wechatpay-sandbox

.PHONY: plugin
plugin: ## Build the kubectl plugin into bin/kubectl-crowdpack (docs/cli.md).
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/kubectl-crowdpack ./cmd/kubectl-crowdpack

.PHONY: run
run: manifests generate ## Run the manager against the cluster in the current kubeconfig.
	go run . $(ARGS)

.PHONY: demo
# build comes after demo-tools: kube-apiserver is built against the
# manager's module versions (hack/tools.sh), so on a fresh clone Go's build
# cache then already holds the manager's client packages. It compiles with
# the tools' compiler, which asks for huge pages (docs/performance.md): 17 s
# instead of 26 on a fresh clone, the same binaries.
demo: ## Run the whole system on this machine and show an upload reaching Ready (KEEP=1 leaves it running).
	$(MAKE) --no-print-directory demo-tools
	GOROOT=$$(hack/tools.sh goroot) $(MAKE) --no-print-directory build
	hack/demo.sh

.PHONY: docker-build
docker-build: ## Build the manager image IMG:VERSION (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMG):$(VERSION) .

.PHONY: docker-push
docker-push: ## Push the manager image IMG:VERSION.
	docker push $(IMG):$(VERSION)

.PHONY: release
release: $(HELM) ## Write install.yaml, crds.yaml, the chart package, the kubectl plugin (linux amd64, arm64), the image tarball (OCI layout, linux amd64) and SHA256SUMS for VERSION and IMG to dist/.
	HELM=$(HELM) hack/release.sh "$(VERSION)" "$(IMG)" "$(DIST)"

##@ Deployment

.PHONY: install
install: manifests ## Install the CRD into the cluster in the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd

# UNINSTALL_CRDS=1 lets uninstall and undeploy delete the CRD, and with it
# every UserPackageUpload in the cluster.
UNINSTALL_CRDS ?=
.PHONY: uninstall
uninstall: ## Remove the CRD, only with UNINSTALL_CRDS=1: it deletes every UserPackageUpload.
	KUBECTL="$(KUBECTL)" UNINSTALL_CRDS="$(UNINSTALL_CRDS)" hack/uninstall-crds.sh

.PHONY: deploy
deploy: manifests ## Deploy the manager with image IMG:VERSION to the cluster in the current kubeconfig.
	go run ./hack/render --image "$(IMG):$(VERSION)" --version "$(VERSION)" config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove the manager; the CRD and the UserPackageUploads stay unless UNINSTALL_CRDS=1.
	go run ./hack/render --crds exclude config/default | $(KUBECTL) delete --ignore-not-found --wait=false -f -
	KUBECTL="$(KUBECTL)" UNINSTALL_CRDS="$(UNINSTALL_CRDS)" hack/uninstall-crds.sh

$(CONTROLLER_GEN):
	hack/tools.sh controller-gen

$(HELM):
	hack/tools.sh helm

$(CRD_REF_DOCS):
	hack/tools.sh crd-ref-docs

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
