# crowdpack — see README.md. Everything here runs on a machine with only Go:
# the test binaries are built from the Go module proxy by hack/tools.sh.

IMG ?= crowdpack:dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
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

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC manifests.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="{./api/...,./controllers/...}" output:crd:artifacts:config=config/crd/bases
	cp config/crd/bases/*.yaml charts/crowdpack/crds/ # the Helm chart ships the same CRDs (test/helm checks it)

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
tools: ## Build (or reuse) controller-gen, etcd, kube-apiserver and MinIO in bin/.
	hack/tools.sh all

.PHONY: test
test: tools ## Everything CI runs: generated files current, vet, all tests, brief fuzzing.
	hack/check-generated.sh
	go vet ./...
	go test ./... -count=1 -timeout 30m
	go test ./... -run '^$$' -bench . -benchtime 1x -skip ThousandUploads
	$(MAKE) fuzz

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME.
	hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: tools ## Run the benchmarks (not the load test).
	go test ./... -run '^$$' -bench . -skip ThousandUploads -benchtime 3x -benchmem

# LOAD_FLAGS are the manager flags under test, e.g. LOAD_FLAGS="--max-concurrent-reconciles=16".
LOAD_OBJECTS ?= 1000
LOAD_FLAGS ?=
.PHONY: load
load: tools ## Time LOAD_OBJECTS UserPackageUploads to Ready with the manager binary; report initiates and peak RSS.
	CROWDPACK_LOAD_OBJECTS=$(LOAD_OBJECTS) CROWDPACK_LOAD_FLAGS="$(LOAD_FLAGS)" \
	  go test ./controllers -run '^$$' -bench ThousandUploads -benchtime 1x -timeout 20m

##@ Build

.PHONY: build
build: ## Build the manager and the sandbox into bin/.
	go build -trimpath -ldflags "-X github.com/crowdpack/crowdpack/internal/wechatpay.Version=$(VERSION)" -o $(BIN)/manager .
	go build -trimpath -o $(BIN)/wechatpay-sandbox ./cmd/wechatpay-sandbox

.PHONY: run
run: manifests generate ## Run the manager against the cluster in the current kubeconfig.
	go run . $(ARGS)

.PHONY: demo
demo: tools build ## Run the whole system on this machine and show an upload reaching Ready (KEEP=1 leaves it running).
	hack/demo.sh

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install the CRD into the cluster in the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRD (and every UserPackageUpload) from the cluster.
	$(KUBECTL) delete -k config/crd --ignore-not-found

.PHONY: deploy
deploy: manifests ## Deploy the manager with image IMG to the cluster in the current kubeconfig.
	hack/set-image.sh config/manager/kustomization.yaml "$(IMG)"
	$(KUBECTL) apply --server-side -k config/default

.PHONY: undeploy
undeploy: ## Remove the manager and its CRD from the cluster.
	$(KUBECTL) delete -k config/default --ignore-not-found

$(CONTROLLER_GEN):
	hack/tools.sh controller-gen

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
