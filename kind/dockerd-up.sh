#!/usr/bin/env bash
# Starts dockerd when none answers (hosts without systemd, like the development VMs),
# then waits for it. Output goes to /var/log/kestrel-dockerd.log.
set -euo pipefail
if docker info >/dev/null 2>&1; then
	echo "dockerd: running"
	exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd: not installed (apt-get install docker.io)" >&2; exit 1; }
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	systemctl start docker
else
	# dockerd (and its containerd) outlive this script: they must not inherit its other
	# open files, or a lock held by the caller (flock /tmp/kestrel-kind.lock make deps)
	# stays held by dockerd for good.
	for fd in /proc/$$/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
	done
	setsid dockerd >>/var/log/kestrel-dockerd.log 2>&1 </dev/null &
fi
for _ in $(seq 60); do
	docker info >/dev/null 2>&1 && { echo "dockerd: started"; exit 0; }
	sleep 0.5
done
echo "dockerd: did not answer within 30 s (see /var/log/kestrel-dockerd.log)" >&2
exit 1
