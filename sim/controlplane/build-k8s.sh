#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-proxy and kubectl from k8s.io/kubernetes at the
# version pinned in k8s/go.mod (go.sum committed beside it), into
# ~/.cache/kestrel/k8s-<version>/bin/ ($KESTREL_K8S_BIN overrides the bin dir).
# Does nothing when a complete build of that version is already there.
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin" GOWORK=off

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mod="$here/k8s"
version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$mod/go.mod")
[ -n "$version" ] || { echo "build-k8s: no k8s.io/kubernetes version in $mod/go.mod" >&2; exit 1; }

work="$HOME/.cache/kestrel/k8s-$version"
bin="${KESTREL_K8S_BIN:-$work/bin}"
cmds=(kube-apiserver kube-controller-manager kube-proxy kubectl)
# The stamp names the version and the exact dependency set; it is written last, so an
# interrupted build is redone.
stamp="$version $(sha256sum "$mod/go.sum" | cut -c1-16)"

# A machine without kubectl gets ours on its PATH, so the kubectl commands
# that `kestrel sim up` prints work as printed.
link_kubectl() {
	if ! command -v kubectl >/dev/null && [ -w /usr/local/bin ]; then
		ln -sf "$bin/kubectl" /usr/local/bin/kubectl
		echo "k8s $version: linked /usr/local/bin/kubectl to $bin/kubectl"
	fi
}

complete=1
for c in "${cmds[@]}"; do [ -x "$bin/$c" ] || complete=0; done
if [ "$complete" = 1 ] && [ "$(cat "$bin/.stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "k8s $version: present in $bin"
	link_kubectl
	exit 0
fi

echo "k8s $version: building ${cmds[*]} into $bin (several minutes on a cold cache)"
mkdir -p "$work" "$bin"
cp "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" "$work/"
rm -f "$bin/.stamp"

# Version variables as the upstream build (hack/lib/version.sh) sets them, so
# `kubectl version` and /version report the release instead of v0.0.0-master.
minor=$(echo "$version" | cut -d. -f2)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

start=$(date +%s)
(
	cd "$work"
	# -mod=readonly: the committed go.sum must cover everything; nothing is re-resolved.
	CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$bin/" \
		$(printf 'k8s.io/kubernetes/cmd/%s ' "${cmds[@]}")
)
echo "$stamp" >"$bin/.stamp"
echo "k8s $version: built in $(($(date +%s) - start))s"
link_kubectl
