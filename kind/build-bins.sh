#!/usr/bin/env bash
# Builds every program a Kestrel kind node image carries, offline from the Go module
# cache/proxy, into ~/.cache/kestrel/kind-<k8s version>/bin ($KESTREL_KIND_BIN overrides):
#   kubelet kubeadm kube-scheduler      from modules/k8s (k8s.io/kubernetes, the version sim pins)
#   kube-apiserver kube-controller-manager kubectl   copied from sim's build (build-k8s.sh)
#   etcd                                from modules/etcd (the version kubeadm expects)
#   coredns                             from modules/coredns (the version kubeadm deploys)
#   kube-network-policies               from modules/knp (sigs.k8s.io/kube-network-policies, for make certify-knp; only with KESTREL_KIND_KNP=1)
#   kube-proxy                          copied from sim's build (kind up --cni ptp runs it)
# Each module has its own stamp (version + go.sum hash); a module whose stamp matches
# is not rebuilt. Prints nothing but progress; `kestrel kind image` runs it.
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin" GOWORK=off

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/modules/k8s/go.mod")
simversion=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$repo/sim/controlplane/k8s/go.mod")
[ "$version" = "$simversion" ] || { echo "build-bins: kind pins $version, sim pins $simversion: keep them equal" >&2; exit 1; }
bin="${KESTREL_KIND_BIN:-$HOME/.cache/kestrel/kind-$version/bin}"
mkdir -p "$bin"

# sim's build gives kube-apiserver, kube-controller-manager and kubectl.
"$repo/sim/controlplane/build-k8s.sh" >&2
simbin="${KESTREL_K8S_BIN:-$HOME/.cache/kestrel/k8s-$version/bin}"

minor=$(echo "$version" | cut -d. -f2)
k8sldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	k8sldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	k8sldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# build MODULE_DIR LDFLAGS PKG... : builds the packages into $bin unless the module's stamp matches.
# A PKG given as NAME=PATH is built as $bin/NAME (etcd's package path ends in /v3).
build() {
	local mod=$1 ldflags=$2; shift 2
	local name stamp; name=$(basename "$mod")
	stamp="$(sha256sum "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)"
	local complete=1 p
	for p in "$@"; do [ -x "$bin/$(basename "${p%%=*}")" ] || complete=0; done
	if [ "$complete" = 1 ] && [ "$(cat "$bin/.stamp-$name" 2>/dev/null)" = "$stamp" ]; then
		echo "kind bins: $name present" >&2
		return
	fi
	rm -f "$bin/.stamp-$name"
	echo "kind bins: building $* (minutes on a cold cache)" >&2
	local start; start=$(date +%s)
	# -mod=readonly: the committed go.sum covers everything; nothing is re-resolved.
	for p in "$@"; do
		if [[ $p == *=* ]]; then
			(cd "$mod" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$bin/${p%%=*}" "${p#*=}")
		fi
	done
	local plain=(); for p in "$@"; do [[ $p == *=* ]] || plain+=("$p"); done
	if [ ${#plain[@]} -gt 0 ]; then
		(cd "$mod" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$bin/" "${plain[@]}")
	fi
	echo "$stamp" >"$bin/.stamp-$name"
	echo "kind bins: $name built in $(($(date +%s) - start))s" >&2
}

build "$here/modules/k8s" "$k8sldflags" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kube-scheduler
# etcd's and CoreDNS's own builds stamp their versions the same way.
etcdversion=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$here/modules/etcd/go.mod")
build "$here/modules/etcd" "-s -w" etcd=go.etcd.io/etcd/server/v3
corednsversion=$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3}' "$here/modules/coredns/go.mod")
build "$here/modules/coredns" "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$corednsversion" github.com/coredns/coredns

# kube-network-policies only for the clusters that run it (make certify-knp:
# KESTREL_KIND_KNP=1); CI's kind runs do not pay for its build.
knpversion=$(awk '$1 == "require" && $2 == "sigs.k8s.io/kube-network-policies" {print $3}' "$here/modules/knp/go.mod")
if [ "${KESTREL_KIND_KNP:-}" = 1 ]; then
	build "$here/modules/knp" "-s -w" kube-network-policies=sigs.k8s.io/kube-network-policies/cmd
fi

for c in kube-apiserver kube-controller-manager kube-proxy kubectl; do
	cmp -s "$simbin/$c" "$bin/$c" || cp -f "$simbin/$c" "$bin/$c"
done
echo "kind bins: $bin (kubernetes $version, etcd $etcdversion, coredns $corednsversion, kube-network-policies $knpversion)" >&2
