#!/bin/sh
# sidecar.sh is the end-to-end test's stand-in for a workload's own
# sidecar that does not read the token (registry.example/git-credentials:1.4):
# it says it is up and waits, ending at once on SIGTERM.
trap 'kill $! 2>/dev/null; echo "stopping: TERM"; exit 0' TERM
echo "sidecar: up"
while :; do
	sleep 3600 &
	wait $!
done
