# Snapback: the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.cache/bin:$(PATH)
KUBECONFIG_LOCAL := $(CURDIR)/.cache/cluster/kubeconfig

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# `npm ci` installs exactly the committed lock file (every platform's optional bindings included) and
# never rewrites it, so an install does not depend on what the registry serves that day.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: deps
deps: node_modules/.installed ## Install the Node toolchain (Node 24 comes as a dev dependency)

.PHONY: generate
generate: deps ## Regenerate CRDs and types from src/api/crds.ts
	npm run -s generate

.PHONY: deploy-manifests
deploy-manifests: deps ## Render deploy/base/snapback.yaml from the Helm chart (needs .cache/bin/helm)
	@{ echo '# Generated from charts/snapback by `make deploy-manifests`. Do not edit.'; \
	  helm template snapback charts/snapback --namespace snapback-system --set crds.install=false --skip-schema-validation; } \
	  > deploy/base/snapback.yaml

.PHONY: build
build: deps ## Compile the operator to dist/
	npm run -s build

.PHONY: check
check: deps ## Type check, lint and format check
	npm run -s typecheck
	npm run -s lint
	npm run -s format:check

.PHONY: unit
unit: deps ## Unit tests (no cluster)
	npm run -s test:unit

.PHONY: cluster-up
cluster-up: deps ## Build (if needed) and start the local control plane
	test/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local control plane and remove its state
	test/cluster/down.sh

.PHONY: integration
integration: deps ## Integration tests against the running local cluster
	npm run -s test:integration

.PHONY: test
test: deps ## Everything: checks, unit tests, then integration tests on a fresh local cluster
	scripts/test.sh

.PHONY: bench
bench: deps ## Benchmarks with their baselines on a cluster of their own (see bench/; figures in bench/results/)
	scripts/bench.sh

.PHONY: run
run: deps ## Run the operator against the current kubeconfig (installs the CRDs first)
	kubectl apply --server-side -f crds/
	tsx src/main.ts

.PHONY: demo
demo: deps ## Local cluster + operator + sample data service, backup and restore, shown live
	scripts/demo.sh

.PHONY: demo-down
demo-down: ## Stop the demo's operator and the local cluster
	scripts/demo.sh down
